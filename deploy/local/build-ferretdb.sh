#!/usr/bin/env bash
# Build the FerretDB binary of the local stack from its Go module, once.
#
# Usage: build-ferretdb.sh VERSION CACHE_DIR
#   VERSION    FerretDB module version, e.g. v1.24.2
#   CACHE_DIR  folder of the stack cache; the binary lands in CACHE_DIR/ferretdb-VERSION/ferretdb
#
# Why a script: FerretDB's own build (Taskfile + `go generate`) needs a git
# checkout to write build/version/*.txt, which are embedded in the binary and
# without which it panics at start. The module zip from the Go proxy has no
# git data, so this writes those files itself, then runs a plain `go build`.
# Every step is skipped when its output already exists.
set -euo pipefail

version="${1:?usage: build-ferretdb.sh VERSION CACHE_DIR}"
cache="${2:?usage: build-ferretdb.sh VERSION CACHE_DIR}"
module="github.com/FerretDB/FerretDB"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"  # absolute: the build below changes folder

out="$cache/ferretdb-$version/ferretdb"
src="$cache/ferretdb-$version/src"
export GOMODCACHE="$cache/gomod"
export GOFLAGS="-modcacherw -buildvcs=false"
export GOTOOLCHAIN=local

if [[ -x "$out" ]]; then
  echo "ferretdb: $out exists, skipping build"
  exit 0
fi

mkdir -p "$cache/ferretdb-$version"
cd "$cache/ferretdb-$version"  # outside any go.mod, so `go mod download` takes a bare module
echo "ferretdb: downloading $module@$version"
info="$(go mod download -json "$module@$version")"
moddir="$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$moddir" || ! -d "$moddir" ]]; then
  echo "ferretdb: go mod download gave no module folder:" >&2
  printf '%s\n' "$info" >&2
  exit 1
fi

# The module cache is read-only by design; build in a private copy.
rm -rf "$src"
cp -r "$moddir" "$src"
chmod -R u+w "$src"

# What `go generate ./build/version` would write from git.
gen="$src/build/version"
printf '%s\n' "$version" >"$gen/version.txt"
printf '%s\n' "unknown" >"$gen/commit.txt"
printf '%s\n' "unknown" >"$gen/branch.txt"
printf '%s\n' "coc-local" >"$gen/package.txt"

echo "ferretdb: building $out (takes a few minutes the first time)"
(cd "$src" && go build -trimpath -o "$out.tmp" ./cmd/ferretdb)
mv "$out.tmp" "$out"
rm -rf "$src"
echo "ferretdb: built $out"
