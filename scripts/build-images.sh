#!/usr/bin/env bash
# Build every walletchaos image with no registry (air-gapped / this project's CI):
#   1. Debian bookworm base from debootstrap (+ python3, python3-venv, postgresql) -> docker import
#   2. Toxiproxy server + cli from `go install` (static, CGO off)
#   3. wheelhouse of the project's dependencies, built on the host (pip in a container can't reach PyPI here)
#   4. docker build of walletchaos/app, walletchaos/toxiproxy, walletchaos/postgres from those
# Every step is cached: the base image by a hash of its package list (+ a rootfs tarball in .cache),
# the Go binaries by version, the wheelhouse by a hash of pyproject.toml; docker's layer cache does the rest.
# Prints the `export ...` lines that select these images for docker-compose.yml and the docker backend.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
CACHE=${WALLETCHAOS_CACHE:-.cache}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TOXIPROXY_VERSION=${TOXIPROXY_VERSION:-v2.12.0}
BASE_PACKAGES=${BASE_PACKAGES:-python3,python3-venv,postgresql,ca-certificates}
IMAGE_PYTHON=${IMAGE_PYTHON:-3.11}                  # python3 of Debian $SUITE (the offline app image)
BASE_IMAGE=walletchaos/debian:$SUITE          # also tagged walletchaos/python:$SUITE (PYTHON_IMAGE)
APP_IMAGE=${WALLET_IMAGE_TAG:-walletchaos/app:dev}
TOXI_IMAGE=walletchaos/toxiproxy:${TOXIPROXY_VERSION#v}
PG_IMAGE=walletchaos/postgres:15              # bookworm ships PostgreSQL 15
LABEL=walletchaos=1

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$(date +%s)
docker info >/dev/null 2>&1 || { echo "build-images: no Docker engine answers (try: make docker-engine)" >&2; exit 1; }
mkdir -p "$CACHE"

# -- 1. base image ----------------------------------------------------------------------------
base_key=$(printf '%s|%s|%s|v1' "$SUITE" "$BASE_PACKAGES" "$MIRROR" | sha1sum | cut -c1-12)
have_key=$(docker image inspect -f '{{ index .Config.Labels "walletchaos.base-key" }}' "$BASE_IMAGE" 2>/dev/null || true)
if [ "$have_key" != "$base_key" ]; then
  tarball="$CACHE/base-$SUITE-$base_key.tar"
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "build-images: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    root=$(mktemp -d "${TMPDIR:-/tmp}/walletchaos-rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    log "debootstrap --variant=minbase $SUITE (+ $BASE_PACKAGES) from $MIRROR"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -30 "$CACHE/debootstrap.log" >&2; exit 1; }
    # the package's postinst made a default cluster; the postgres image makes its own in the volume
    rm -rf "$root"/var/lib/postgresql/*/main "$root"/etc/postgresql/*/main
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"; trap - EXIT
    rm -f "$CACHE"/base-"$SUITE"-*.tar.old
    for old in "$CACHE"/base-"$SUITE"-*.tar; do [ "$old" = "$tarball" ] || rm -f "$old"; done
  else
    log "base rootfs from cache $tarball"
  fi
  log "docker import -> $BASE_IMAGE"
  docker import \
    --change "LABEL walletchaos=1 walletchaos.base-key=$base_key" \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$BASE_IMAGE" >/dev/null
else
  log "base $BASE_IMAGE up to date (key $base_key)"
fi
docker tag "$BASE_IMAGE" "walletchaos/python:$SUITE"

# -- 2. toxiproxy binaries ----------------------------------------------------------------------
gobin="$CACHE/go-bin/$TOXIPROXY_VERSION"
if [ ! -x "$gobin/server" ] || [ ! -x "$gobin/cli" ]; then
  command -v go >/dev/null || { echo "build-images: needs Go to build toxiproxy (go install)" >&2; exit 1; }
  log "go install toxiproxy server+cli $TOXIPROXY_VERSION (static)"
  mkdir -p "$gobin"
  GOBIN="$(cd "$gobin" && pwd)" CGO_ENABLED=0 go install -ldflags "-s -w -X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" "github.com/Shopify/toxiproxy/v2/cmd/cli@$TOXIPROXY_VERSION"
fi
rm -rf docker/toxiproxy/bin && mkdir -p docker/toxiproxy/bin
cp "$gobin/server" docker/toxiproxy/bin/toxiproxy && cp "$gobin/cli" docker/toxiproxy/bin/toxiproxy-cli

# -- 3. wheelhouse --------------------------------------------------------------------------------
wh_key=$( (cat pyproject.toml docker/app/build-requirements.txt; echo "$IMAGE_PYTHON") | sha1sum | cut -c1-12)
wheelhouse="$CACHE/wheelhouse-$wh_key"
if [ ! -f "$wheelhouse/.complete" ]; then
  log "wheelhouse (deps of pyproject.toml) -> $wheelhouse"
  rm -rf "$wheelhouse" && mkdir -p "$wheelhouse"
  "$PY" - >"$wheelhouse/requirements.txt" <<'PYEOF'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PYEOF
  if [ "$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$IMAGE_PYTHON" ]; then
    "$PY" -m pip wheel -q -w "$wheelhouse" -r "$wheelhouse/requirements.txt" -r docker/app/build-requirements.txt
  else  # host Python differs from the image's: fetch binary wheels for the image's interpreter
    "$PY" -m pip download -q -d "$wheelhouse" --only-binary=:all: --python-version "$IMAGE_PYTHON" \
      --implementation cp --platform manylinux_2_36_x86_64 --platform manylinux_2_28_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux1_x86_64 \
      --platform linux_x86_64 --platform any \
      -r "$wheelhouse/requirements.txt" -r docker/app/build-requirements.txt
  fi
  touch "$wheelhouse/.complete"
  for old in "$CACHE"/wheelhouse-*; do [ "$old" = "$wheelhouse" ] || rm -rf "$old"; done
else
  log "wheelhouse cached ($wheelhouse)"
fi
# the build context gets a copy (hard links when possible): docker/wheelhouse is what the Dockerfile reads
find docker/wheelhouse -maxdepth 1 -name '*.whl' -delete
cp -l "$wheelhouse"/*.whl docker/wheelhouse/ 2>/dev/null || cp "$wheelhouse"/*.whl docker/wheelhouse/

# -- 4. images ----------------------------------------------------------------------------------
build() {
  local tag=$1; shift; log "docker build $tag"
  # classic builder: present in every engine (docker.io has no buildx here); same Dockerfiles work with BuildKit
  DOCKER_BUILDKIT=0 docker build --label "$LABEL" -t "$tag" "$@" >"$CACHE/build-${tag//[:\/]/_}.log" 2>&1 \
    || { tail -40 "$CACHE/build-${tag//[:\/]/_}.log" >&2; echo "build-images: docker build $tag failed" >&2; exit 1; }
}
# the dependency stage gets its own tag: the classic builder's cache lives in images, and an untagged
# stage would be pruned below (and a rebuild of the wheel layer would follow)
build "${APP_IMAGE%:*}-deps:${APP_IMAGE##*:}" -f docker/app/Dockerfile --target deps --build-arg "PYTHON_IMAGE=walletchaos/python:$SUITE" .
build "$APP_IMAGE"  -f docker/app/Dockerfile --build-arg "PYTHON_IMAGE=walletchaos/python:$SUITE" .
build "$TOXI_IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" docker/toxiproxy
build "$PG_IMAGE"   --build-arg "BASE_IMAGE=$BASE_IMAGE" docker/postgres
docker image prune -f --filter label=walletchaos=1 >/dev/null || true   # dangling leftovers of rebuilds

log "done in $(( $(date +%s) - t0 ))s"
cat <<OUT
export WALLET_IMAGE=$APP_IMAGE
export GATEWAY_IMAGE=$APP_IMAGE
export LOCUST_IMAGE=$APP_IMAGE
export TOXIPROXY_IMAGE=$TOXI_IMAGE
export POSTGRES_IMAGE=$PG_IMAGE
OUT
