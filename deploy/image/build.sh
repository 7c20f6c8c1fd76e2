#!/usr/bin/env bash
# Build the one image of the pipeline (the Containerfile at the repository root) where no base image can be
# pulled: a Debian 12 root filesystem made with mmdebstrap from Debian's own packages, imported as the base,
# then the Containerfile built on it with buildah. vfs storage and chroot isolation need no daemon, no
# overlay filesystem and no user namespaces, so this works inside a container too (as root).
#
# Usage: deploy/image/build.sh [TAG]          (default localhost/ecoc/pipeline:<version of pyproject.toml>)
# Needs: mmdebstrap and buildah (apt-get install mmdebstrap buildah), Debian's mirror and PyPI.
# Measured here (2 busy cores, 2026-12-07): the root filesystem 74 s, its import 18 s, the image 119 s.
set -euo pipefail

cd "$(dirname "$0")/../.."
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)"
tag="${1:-localhost/ecoc/pipeline:$version}"
work=".cache/image"
base="localhost/debian:bookworm-mmdebstrap"
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
mkdir -p "$work"

if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  [[ -s "$work/bookworm.tar" ]] || mmdebstrap --variant=minbase bookworm "$work/bookworm.tar"
  ctr="$(buildah from scratch)"
  buildah add "$ctr" "$work/bookworm.tar" /
  buildah commit -q "$ctr" "$base"
  buildah rm "$ctr" >/dev/null
fi

# Behind a proxy that re-signs TLS, pip in the build needs this machine's CAs (Containerfile: PIP_CERT).
ca=()
if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
  ca=(-v /etc/ssl/certs/ca-certificates.crt:/run/build-ca.crt:ro --build-arg PIP_CERT=/run/build-ca.crt)
fi
buildah bud --layers=false "${ca[@]}" --build-arg BASE="$base" -f Containerfile -t "$tag" .

# The image starts a service by its argument, as a user that is not root.
ctr="$(buildah from "$tag")"
trap 'buildah rm "$ctr" >/dev/null' EXIT
[[ "$(buildah run "$ctr" -- id -u)" == 10001 ]]
buildah run "$ctr" -- python -m services --help >/dev/null
buildah run "$ctr" -- python -c "import services.signing.app, services.workspace.app"
echo "built $tag"
