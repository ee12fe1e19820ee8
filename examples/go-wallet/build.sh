#!/usr/bin/env bash
# Build the Go wallet into <repo>/.venv/bin/go-wallet, only if it is missing or its sources changed
# (a SHA-256 of the non-test *.go, go.mod and go.sum is kept next to the binary). Idempotent; called by setup.
#   examples/go-wallet/build.sh [OUTPUT]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/.venv/bin/go-wallet}"
if ! command -v go >/dev/null 2>&1; then
  echo "go-wallet: the Go toolchain (go) is not on PATH; install Go >= 1.26 to build examples/go-wallet" >&2
  exit 1
fi
sum="$(cd "$here" && cat go.mod go.sum $(ls *.go | grep -v '_test\.go$' | sort) | sha256sum | cut -d' ' -f1)"
stamp="$out.sha256"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
  echo "go-wallet: up to date ($out)"
  exit 0
fi
mkdir -p "$(dirname "$out")"
(cd "$here" && GOFLAGS="${GOFLAGS:--mod=mod}" go build -trimpath -o "$out.tmp" .)
mv -f "$out.tmp" "$out"
echo "$sum" > "$stamp"
echo "go-wallet: built $out"
