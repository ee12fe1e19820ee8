#!/usr/bin/env bash
# The container part of CI, one entry point: engine + tools, offline images, leftovers cleared,
# then the docker-marked tests. Cached between runs on one machine (base image, wheelhouse, Go build);
# a fresh machine builds everything (about 3 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/docker-engine.sh
bash scripts/build-images.sh
bash scripts/docker-clean.sh
exec .venv/bin/pytest -q -m docker "$@"
