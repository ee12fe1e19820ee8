#!/bin/sh
# Role dispatcher of the walletchaos app image. Writes what the healthcheck should probe, then execs.
set -eu
health=/tmp/walletchaos-health
role=${1:-wallet}
case "$role" in
  wallet)
    shift
    echo "http://127.0.0.1:${WALLET_PORT}/readyz" > "$health"
    exec python -m mock_wallet.serve wallet --host "${WALLET_HOST}" --port "${WALLET_PORT}" "$@" ;;
  gateway)
    shift
    mkdir -p "$(dirname "${GATEWAY_DB_PATH}")"
    echo "http://127.0.0.1:${GATEWAY_PORT}/readyz" > "$health"
    exec python -m mock_wallet.serve gateway --host "${GATEWAY_HOST}" --port "${GATEWAY_PORT}" "$@" ;;
  locust-master)
    shift
    echo "http://127.0.0.1:${LOCUST_WEB_PORT:-8089}/" > "$health"
    exec locust --master --web-port "${LOCUST_WEB_PORT:-8089}" "$@" ;;
  locust-worker)
    shift
    echo "tcp://${LOCUST_MASTER_NODE_HOST:-locust-master}:${LOCUST_MASTER_NODE_PORT:-5557}" > "$health"
    exec locust --worker "$@" ;;
  locust)
    shift
    echo "none" > "$health"
    exec locust "$@" ;;
  *)
    echo "none" > "$health"
    exec "$@" ;;
esac
