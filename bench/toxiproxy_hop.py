"""Toxiproxy hop cost: latency of a tiny GET direct vs through a Toxiproxy proxy (no toxics).

Two upstreams, each measured direct and proxied, interleaved request by request on two keep-alive
connections of the same kind of client (http.client, the lightest blocking client in the stdlib):
  - a minimal asyncio HTTP server (bench's own child process) behind our own toxiproxy-server: the
    cleanest figure of the hop itself → the headline `toxiproxy_added_p50_ms`;
  - the wallet's GET /healthz, direct vs the topology's `wallet_api` proxy (when the wallet runs).
"""

from __future__ import annotations

import asyncio
import http.client
import subprocess
import sys
import time
from typing import Any

from bench.common import LOOPBACK, PY, BenchContext, Skip, percentile

TARGET_ADDED_P50_MS = 1.0


# -- the minimal upstream -------------------------------------------------------------------------
_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n"
             b"connection: keep-alive\r\n\r\n{\"status\":\"ok\"}")


class _Tiny(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.t = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:  # GET only: no body
            _, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.t.write(_RESPONSE)


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Tiny, LOOPBACK, port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def _start_tiny() -> tuple[subprocess.Popen, int]:
    from mock_wallet.embedded_pg import free_port

    port = free_port()
    proc = subprocess.Popen([PY, "-m", "bench.toxiproxy_hop", "--serve", str(port)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError("tiny http server did not start")
    return proc, port


# -- the measurement ------------------------------------------------------------------------------
def _get(conn: http.client.HTTPConnection, path: str) -> float:
    t0 = time.perf_counter_ns()
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    dt = (time.perf_counter_ns() - t0) / 1e6
    if r.status != 200:
        raise RuntimeError(f"GET {path} answered {r.status}")
    return dt


def compare(direct: tuple[str, int], proxied: tuple[str, int], path: str, n: int) -> dict[str, float]:
    """n GETs each way, interleaved (alternating which goes first), after a short warm-up."""
    a = http.client.HTTPConnection(*direct, timeout=5)
    b = http.client.HTTPConnection(*proxied, timeout=5)
    try:
        for _ in range(min(200, n)):
            _get(a, path), _get(b, path)
        da: list[float] = []
        db: list[float] = []
        for i in range(n):
            if i % 2:
                da.append(_get(a, path))
                db.append(_get(b, path))
            else:
                db.append(_get(b, path))
                da.append(_get(a, path))
    finally:
        a.close()
        b.close()
    out = {"n": n}
    for name, vals in (("direct", da), ("proxied", db)):
        for q in (50, 99):
            out[f"{name}_p{q}_ms"] = round(percentile(vals, q), 4)
    out["added_p50_ms"] = round(out["proxied_p50_ms"] - out["direct_p50_ms"], 4)
    out["added_p99_ms"] = round(out["proxied_p99_ms"] - out["direct_p99_ms"], 4)
    return out


def _hostport(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def measure(ctx: BenchContext, quick: bool = False) -> dict[str, Any]:
    from mock_wallet.embedded_pg import free_port
    from walletchaos.topology.process import toxiproxy_binary
    from walletchaos.toxiproxy_client import ToxiproxyClient

    n = 300 if quick else 2000
    res: dict[str, Any] = {}
    tiny, tp_proc = None, None
    try:
        tiny, port = _start_tiny()
        api_port = free_port()
        tp_proc = subprocess.Popen([str(toxiproxy_binary()), "-host", LOOPBACK, "-port", str(api_port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        client = ToxiproxyClient(f"http://{LOOPBACK}:{api_port}")
        deadline = time.monotonic() + 15
        while not client.is_up():
            if tp_proc.poll() is not None or time.monotonic() > deadline:
                raise Skip("toxiproxy-server did not come up")
            time.sleep(0.05)
        proxy = client.create_proxy("bench_tiny", f"{LOOPBACK}:{free_port()}", f"{LOOPBACK}:{port}")
        t0 = time.time()
        tiny_res = compare((LOOPBACK, port), (LOOPBACK, proxy.listen_port), "/healthz", n)
        res["load"] = ctx.sampler.window(t0, time.time())
        res["tiny"] = tiny_res
    finally:
        for p in (tp_proc, tiny):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    try:
        topo = ctx.topology()
        res["wallet_healthz"] = compare(_hostport(topo.wallet_direct_url), _hostport(topo.wallet_url), "/healthz", n)
    except Skip as exc:
        res["wallet_healthz"] = {"skipped": str(exc)}
    res["toxiproxy_added_p50_ms"] = res["tiny"]["added_p50_ms"]
    res["toxiproxy_added_p99_ms"] = res["tiny"]["added_p99_ms"]
    return res


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        try:
            asyncio.run(_serve(int(sys.argv[2])))
        except KeyboardInterrupt:
            pass
