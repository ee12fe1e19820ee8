#!/usr/bin/env bash
# Make sure a Docker engine answers, and the tools the container path needs are there (idempotent):
#   docker.io (engine + cli), docker-compose (v1, only if no compose v2 plugin), debootstrap (make images).
# When no engine answers: start it (systemctl when systemd runs, else dockerd in the background with
# its log in ${DOCKERD_LOG:-/var/log/walletchaos-dockerd.log}) and wait for `docker info` (bounded).
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "docker-engine: apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  echo "docker-engine: engine answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi
log=${DOCKERD_LOG:-/var/log/walletchaos-dockerd.log}
live_dockerd() { ps -C dockerd -o stat= 2>/dev/null | grep -qv '^Z'; }   # zombies of an old one don't count
if [ -d /run/systemd/system ]; then
  echo "docker-engine: systemctl start docker"
  $SUDO systemctl start docker
fi
started=0
for _ in $(seq 1 180); do          # up to 90 s
  if docker info >/dev/null 2>&1; then
    echo "docker-engine: engine answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
    exit 0
  fi
  # no dockerd (or one that is shutting down and gone now): start ours, in the background, detached
  if [ ! -d /run/systemd/system ] && [ $started -lt 3 ] && ! live_dockerd; then
    echo "docker-engine: starting dockerd in the background (log: $log)"
    $SUDO sh -c "setsid nohup dockerd >>'$log' 2>&1 </dev/null &"
    started=$((started + 1))
  fi
  sleep 0.5
done
echo "docker-engine: no engine after 90 s; last lines of $log:" >&2
tail -20 "$log" >&2 2>/dev/null || true
exit 1
