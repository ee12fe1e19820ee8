#!/usr/bin/env bash
# Remove every container, network and volume labelled walletchaos=1 (leftovers of killed runs, compose
# stacks of this project). Images are kept (they are the build cache).
set -euo pipefail
docker info >/dev/null 2>&1 || exit 0
ids=$(docker ps -aq --filter label=walletchaos=1)
[ -z "$ids" ] || { docker unpause $(docker ps -q --filter label=walletchaos=1 --filter status=paused) >/dev/null 2>&1 || true; docker rm -f -v $ids >/dev/null; }
nets=$(docker network ls -q --filter label=walletchaos=1)
[ -z "$nets" ] || docker network rm $nets >/dev/null
vols=$(docker volume ls -q --filter label=walletchaos=1)
[ -z "$vols" ] || docker volume rm -f $vols >/dev/null
echo "docker-clean: removed $(echo $ids | wc -w) containers, $(echo $nets | wc -w) networks, $(echo $vols | wc -w) volumes"
