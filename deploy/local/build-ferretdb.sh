#!/usr/bin/env bash
# Build the FerretDB binary of the local stack from its Go module, once.
#
# Usage: build-ferretdb.sh VERSION CACHE_DIR [BUILD]
#   VERSION    FerretDB module version, e.g. v1.24.2
#   CACHE_DIR  folder of the stack cache
#   BUILD      name of this build, VERSION by default; the binary lands in
#              CACHE_DIR/ferretdb-BUILD/ferretdb, so a new patch gets a new name
#
# Why a script: FerretDB's own build (Taskfile + `go generate`) needs a git
# checkout to write build/version/*.txt, which are embedded in the binary and
# without which it panics at start. The module zip from the Go proxy has no
# git data, so this writes those files itself, then runs a plain `go build`.
# Every step is skipped when its output already exists.
#
# Three patches are applied to the source, see patch_id_lookup, patch_lazy_debug_logs and
# patch_id_conjunct below.
set -euo pipefail

version="${1:?usage: build-ferretdb.sh VERSION CACHE_DIR}"
cache="${2:?usage: build-ferretdb.sh VERSION CACHE_DIR}"
build="${3:-$version}"
module="github.com/FerretDB/FerretDB"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"  # absolute: the build below changes folder

out="$cache/ferretdb-$build/ferretdb"
src="$cache/ferretdb-$build/src"
export GOMODCACHE="$cache/gomod"
export GOFLAGS="-modcacherw -buildvcs=false"
export GOTOOLCHAIN=local

if [[ -x "$out" ]]; then
  echo "ferretdb: $out exists, skipping build"
  exit 0
fi

mkdir -p "$cache/ferretdb-$build"
cd "$cache/ferretdb-$build"  # outside any go.mod, so `go mod download` takes a bare module
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

# The SQLite backend looks documents up by `_ferretdb_sjson->'$._id'` but builds
# the unique _id index on `_ferretdb_sjson->"_id"`. SQLite uses an expression
# index only for the same expression, so every lookup, update and delete by _id
# scanned the whole table (74 ms at 2,000 documents instead of 0.06 ms). The
# patch makes the lookups use the index's own expression; both give the same
# value, and existing data and indexes stay as they are.
patch_id_lookup() {
  local file="$src/internal/backends/sqlite/metadata/metadata.go"
  local old="IDColumn = DefaultColumn + \"->'\$._id'\""
  local new='IDColumn = DefaultColumn + `->"_id"`'
  if ! grep -qF "$old" "$file"; then
    echo "ferretdb: $file no longer has the expected _id expression; review the patch" >&2
    exit 1
  fi
  python3 - "$file" "$old" "$new" <<'PY'
import sys
path, old, new = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    text = f.read()
with open(path, "w", encoding="utf-8") as f:
    f.write(text.replace(old, new, 1))
PY
  echo "ferretdb: patched the _id lookup expression to match its index"
}
patch_id_lookup

# Every SQL statement FerretDB runs is passed to `logger.With(args...)` for a
# debug line, before the logger is asked whether debug is on. slog's text
# handler formats those attributes at once: each document written is quoted
# and escaped character by character even at --log-level=warn. A CPU profile
# of the pipeline at 50 builds/s showed 17% of FerretDB's CPU there (the signed
# certificates are the large documents). The patch asks the logger first; with
# debug logging on, the lines are the same.
patch_lazy_debug_logs() {
  python3 - "$src/internal/util/fsql/db.go" "$src/internal/util/fsql/tx.go" <<'PY'
import re, sys
line = re.compile(r"^(\t)(\w+)\.l\.With\(fields\.\.\.\)\.DebugContext\((.*)\)$", re.M)
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    patched, n = line.subn(r"\1if \2.l.Enabled(ctx, slog.LevelDebug) {\n\1\t\2.l.With(fields...).DebugContext(\3)\n\1}", text)
    if n == 0:
        sys.exit(f"ferretdb: {path} no longer logs statements as expected; review the patch")
    with open(path, "w", encoding="utf-8") as f:
        f.write(patched)
    print(f"ferretdb: {path.rsplit('/', 1)[-1]}: {n} debug lines formatted only when debug is on")
PY
}
patch_lazy_debug_logs

# The SQLite backend pushes an `_id` equality down to SQL only when it is the
# filter's one key: `{"_id": v, "seq": 3}` read and decoded the whole
# collection. Every handler filters the documents it gets back by the whole
# filter again, so narrowing the SQL to the `_id` conjunct gives the same
# answer. With it a guarded write (`replace_one({"_id": v, "seq": n}, ...)`)
# is one indexed request instead of a read and a write.
patch_id_conjunct() {
  python3 - "$src/internal/backends/sqlite/collection.go" <<'PY'
import sys
path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    text = f.read()
old = "\tif params.Filter.Len() == 1 {\n\t\tv, _ := params.Filter.Get(\"_id\")"
new = "\tif params.Filter.Len() >= 1 {\n\t\tv, _ := params.Filter.Get(\"_id\")"
if text.count(old) != 2:
    sys.exit(f"ferretdb: {path} no longer pushes _id down as expected; review the patch")
with open(path, "w", encoding="utf-8") as f:
    f.write(text.replace(old, new))
print("ferretdb: collection.go: _id equality pushed down beside other filter keys")
PY
}
patch_id_conjunct

echo "ferretdb: building $out (takes a few minutes the first time)"
(cd "$src" && go build -trimpath -o "$out.tmp" ./cmd/ferretdb)
mv "$out.tmp" "$out"
rm -rf "$src"
echo "ferretdb: built $out"
