#!/usr/bin/env bash
# Idempotent setup: .venv with the project and its test extras, and the real Toxiproxy server binary.
# Safe to run again: each step is skipped when its result is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
TOXIPROXY_VERSION=${TOXIPROXY_VERSION:-v2.12.0}
EXTRAS=${WALLETCHAOS_EXTRAS:-test,docker,bench}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing walletchaos[$EXTRAS] into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  log=$(mktemp)
  .venv/bin/pip install -q -e ".[$EXTRAS]" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

if [ ! -x .venv/bin/toxiproxy-server ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "setup: Go is needed to build the Toxiproxy server (go install); install Go >= 1.22" >&2
    exit 1
  fi
  echo "setup: building toxiproxy-server $TOXIPROXY_VERSION with go install"
  gobin=$(mktemp -d)
  GOBIN="$gobin" go install -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  install -m 0755 "$gobin/server" .venv/bin/toxiproxy-server
  rm -rf "$gobin"
fi
if ! command -v wrk >/dev/null 2>&1; then
  # wrk: the reference load generator that `make bench` (and its test) compares Locust against
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing wrk (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q wrk >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; } \
      || echo "setup: could not install wrk with apt-get; the bench test needs it" >&2
  else
    echo "setup: wrk not found; the bench test needs it: sudo apt-get install -y wrk" >&2
  fi
fi
# the independent Go wallet (examples/go-wallet, targets/go-wallet.yaml): built once, rebuilt when its sources change
examples/go-wallet/build.sh >/dev/null
echo "setup: ok ($(.venv/bin/python --version), toxiproxy-server $(.venv/bin/toxiproxy-server -version 2>&1 | head -1))"
