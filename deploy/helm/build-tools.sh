#!/usr/bin/env bash
# Build the chart's offline checkers from their Go modules, once: helm (lint, template) and
# kubeconform (the rendered manifests against the schemas in deploy/schemas/).
#
# Usage: build-tools.sh CACHE_DIR
# The binaries land in CACHE_DIR/tools/helm-HELM_VERSION/helm and
# CACHE_DIR/tools/kubeconform-KUBECONFORM_VERSION/kubeconform; a binary that exists is not built again.
# Modules come from the Go module proxy into CACHE_DIR/gomod (shared with the FerretDB build).
# helm takes about 4 minutes on two cores the first time, kubeconform seconds.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"
cache="${1:?usage: build-tools.sh CACHE_DIR}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
export GOMODCACHE="$cache/gomod"
export GOFLAGS="-modcacherw -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

# One build at a time: `make test` starts one in the background and the chart test waits here for it.
mkdir -p "$cache/tools"
exec 9>"$cache/tools/.lock"
flock 9

build() {  # build NAME VERSION PACKAGE
  local out="$cache/tools/$1-$2"
  if [[ -x "$out/$1" ]]; then
    return 0
  fi
  local started=$SECONDS
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" "$go" install "$3@$2"
  rm -rf "$out" && mv "$out.tmp" "$out"  # appears whole or not at all
  echo "$1 $2 built in $((SECONDS - started)) s"
}

build kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform
build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
