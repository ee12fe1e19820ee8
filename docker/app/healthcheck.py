#!/usr/bin/env python3
"""Container healthcheck without curl: probe what the entrypoint said this role serves.

Usage: walletchaos-healthcheck [URL]   (URL http://... -> GET must answer 2xx; tcp://host:port -> connect)
Without URL, reads /tmp/walletchaos-health written by the entrypoint ("none" -> healthy while running).
"""
import socket
import sys
import urllib.parse
import urllib.request

target = sys.argv[1] if len(sys.argv) > 1 else ""
if not target:
    try:
        target = open("/tmp/walletchaos-health").read().strip()
    except OSError:
        sys.exit("no health target yet")
if target == "none":
    sys.exit(0)
url = urllib.parse.urlsplit(target)
try:
    if url.scheme == "tcp":
        socket.create_connection((url.hostname, url.port), timeout=2).close()
    else:
        with urllib.request.urlopen(target, timeout=2) as resp:
            if not 200 <= resp.status < 300:
                sys.exit(f"{target}: HTTP {resp.status}")
except Exception as exc:  # any failure is "unhealthy", with a one-line reason in docker inspect
    sys.exit(f"{target}: {type(exc).__name__}: {exc}")
