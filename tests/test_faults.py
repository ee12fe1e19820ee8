"""The nemesis against a real toxiproxy-server and a real HTTP upstream; control/lifecycle faults against
fakes (a recording topology, httpx.MockTransport) because they are pure call logic."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from walletchaos.faults import (FaultContext, FreezeFault, GatewayFault, KillFault, MaintenanceFault, Nemesis,
                                PauseFault, ProxyDownFault, TerminateFault, ToxicFault, clear_stale)
from walletchaos.scenario import parse_scenario
from walletchaos.topology.process import toxiproxy_binary
from walletchaos.toxiproxy_client import ToxiproxyClient, ToxiproxyError

PROXY = "wallet_api"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll until true (synchronisation on state, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class FakeTopology:
    """Records lifecycle calls; `fail_on` makes one action raise (a half-done start)."""

    name = "fake"
    wallet_direct_url = "http://wallet.test"
    gateway_url = "http://gateway.test"
    admin_token = "admin-token"

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.running = {"wallet": True, "gateway": True, "postgres": True}
        self.fail_on = fail_on

    def _do(self, action: str, service: str, running: bool | None) -> None:
        self.calls.append((action, service))
        if action == self.fail_on:
            raise RuntimeError(f"{action} failed")
        if running is not None:
            self.running[service] = running

    def kill(self, service: str) -> None:
        self._do("kill", service, False)

    def terminate(self, service: str) -> None:
        self._do("terminate", service, False)

    def restart(self, service: str) -> None:
        self._do("restart", service, True)

    def pause(self, service: str) -> None:
        self._do("pause", service, None)

    def resume(self, service: str) -> None:
        self._do("resume", service, None)

    def is_running(self, service: str) -> bool:
        return self.running[service]

    def toxiproxy(self) -> str:
        return "toxiproxy-client"


def make_ctx(toxiproxy: Any = None, topology: Any = None, handler: Callable[[httpx.Request], httpx.Response] | None
             = None, seed: int = 0) -> tuple[FaultContext, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    http = httpx.Client(transport=httpx.MockTransport(handler)) if handler else None
    return FaultContext(topology=topology or FakeTopology(), toxiproxy=toxiproxy, http=http, emit=events.append,
                        seed=seed), events


# -- real Toxiproxy + real HTTP upstream ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def toxiproxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyClient]:
    port = free_port()
    log = (tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log").open("w")
    proc = subprocess.Popen([str(toxiproxy_binary()), "-host", "127.0.0.1", "-port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    client = ToxiproxyClient(f"http://127.0.0.1:{port}")
    try:
        wait_for(client.is_up, what="toxiproxy-server")
        yield client
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("www")
    (root / "hello.txt").write_text("hello\n" * 2000)  # 12 KB: several TCP segments
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(port), what="upstream http.server")
        yield port
    finally:
        stop_process(proc)


@pytest.fixture
def proxied(toxiproxy_server: ToxiproxyClient, upstream: int) -> Iterator[str]:
    """URL of hello.txt through a fresh, clean proxy named wallet_api."""
    info = toxiproxy_server.create_proxy(PROXY, f"127.0.0.1:{free_port()}", f"127.0.0.1:{upstream}")
    toxiproxy_server.reset()
    yield f"http://127.0.0.1:{info.listen_port}/hello.txt"
    toxiproxy_server.reset()


def fetch(url: str, timeout: float = 5.0) -> float:
    """GET on a new connection; returns seconds taken, raises on any transport error."""
    began = time.monotonic()
    response = httpx.get(url, timeout=timeout)
    assert response.status_code == 200 and response.text.startswith("hello")
    return time.monotonic() - began


@pytest.mark.slow
def test_latency_toxic_adds_latency_until_stopped(toxiproxy_server: ToxiproxyClient, proxied: str) -> None:
    ctx, events = make_ctx(toxiproxy_server)
    assert fetch(proxied) < 0.3
    fault = ToxicFault("slow-api", PROXY, "latency", attributes={"latency": 400})
    with fault.applied(ctx):
        assert fault.active and list(toxiproxy_server.toxics(PROXY)) == ["slow-api"]
        assert fetch(proxied) >= 0.39
    assert toxiproxy_server.toxics(PROXY) == {}
    assert fetch(proxied) < 0.3
    assert [(e["kind"], e["name"], e["target"]) for e in events] == [("fault_start", "slow-api", PROXY),
                                                                     ("fault_end", "slow-api", PROXY)]
    assert events[0]["details"]["attributes"] == {"latency": 400}
    fault.stop(ctx)  # idempotent: no error, no second fault_end
    fault.start(ctx)  # a stopped fault never comes back
    assert len(events) == 2 and toxiproxy_server.toxics(PROXY) == {}


@pytest.mark.slow
def test_proxy_down_refuses_connections_then_stop_restores(toxiproxy_server: ToxiproxyClient,
                                                           proxied: str) -> None:
    ctx, _ = make_ctx(toxiproxy_server)
    fault = ProxyDownFault("partition", PROXY)
    fault.start(ctx)
    with pytest.raises(httpx.ConnectError):
        fetch(proxied)
    assert not toxiproxy_server.proxy(PROXY).enabled
    fault.stop(ctx)
    fault.stop(ctx)
    assert toxiproxy_server.proxy(PROXY).enabled
    fetch(proxied)


@pytest.mark.slow
def test_reset_peer_resets_connections(toxiproxy_server: ToxiproxyClient, proxied: str) -> None:
    ctx, _ = make_ctx(toxiproxy_server)
    with ToxicFault("rst", PROXY, "reset_peer", attributes={"timeout": 0}).applied(ctx):
        with pytest.raises(httpx.TransportError) as info:
            fetch(proxied)
        assert not isinstance(info.value, httpx.TimeoutException)
    fetch(proxied)


@pytest.mark.slow
def test_timeout_toxic_is_a_black_hole(toxiproxy_server: ToxiproxyClient, proxied: str) -> None:
    ctx, _ = make_ctx(toxiproxy_server)
    # upstream: the request never arrives, so the server cannot close the connection either
    with ToxicFault("hole", PROXY, "timeout", stream="upstream", attributes={"timeout": 0}).applied(ctx):
        with pytest.raises(httpx.ReadTimeout):
            fetch(proxied, timeout=0.5)
    fetch(proxied)


@pytest.mark.slow
def test_failed_start_leaves_nothing_behind(toxiproxy_server: ToxiproxyClient, proxied: str) -> None:
    ctx, events = make_ctx(toxiproxy_server)
    fault = ToxicFault("ghost", "no_such_proxy", "latency", attributes={"latency": 100})
    with pytest.raises(ToxiproxyError):
        fault.start(ctx)
    fault.stop(ctx)
    assert not fault.active and events == []


@pytest.mark.slow
def test_clear_stale_removes_leftovers(toxiproxy_server: ToxiproxyClient, proxied: str) -> None:
    toxiproxy_server.add_toxic(PROXY, "latency", attributes={"latency": 1000}, name="leftover")
    toxiproxy_server.disable(PROXY)
    found = clear_stale(toxiproxy_server)
    assert found == [f"proxy {PROXY} was disabled", f"toxic leftover on {PROXY}"]
    assert toxiproxy_server.toxics(PROXY) == {} and toxiproxy_server.proxy(PROXY).enabled
    assert clear_stale(toxiproxy_server) == []


TIMELINE = """
name: t
family: network
duration: 60s
timeline:
  - {name: slow, at: 0s, fault: toxic, target: wallet_api, type: latency, attributes: {latency: 300}, for: %s}
  - {name: cut, at: %s, fault: proxy_down, target: wallet_api, for: %s}
  - {name: late, at: 50s, fault: toxic, target: wallet_api, type: reset_peer, for: 1s}
"""


@pytest.mark.slow
def test_nemesis_plays_the_timeline_at_its_offsets(toxiproxy_server: ToxiproxyClient, proxied: str) -> None:
    scenario = parse_scenario((TIMELINE % ("1s", "300ms", "400ms")).replace("at: 50s", "at: 1200ms"))
    ctx, events = make_ctx(toxiproxy_server)
    start_at = time.time()
    nemesis = Nemesis(scenario.schedule(), ctx, start=start_at)
    assert not nemesis.finished()
    try:
        nemesis.start()
        wait_for(lambda: nemesis.active() == ["slow", "cut"], what="both faults active")
        with pytest.raises(httpx.ConnectError):
            fetch(proxied)
        assert nemesis.join(timeout=10)
    finally:
        nemesis.stop_all()
    order = [(e["kind"], e["name"]) for e in events]
    assert order == [("fault_start", "slow"), ("fault_start", "cut"), ("fault_end", "cut"), ("fault_end", "slow"),
                     ("fault_start", "late"), ("fault_end", "late")]
    records = {r["name"]: r for r in nemesis.records()}
    for name, offset in (("slow", 0.0), ("cut", 0.3), ("late", 1.2)):
        assert records[name]["started_at"] - start_at >= offset - 0.01
        assert records[name]["started_at"] - start_at < offset + 1.0
    assert records["cut"]["stopped_at"] - records["cut"]["started_at"] >= 0.39
    assert nemesis.errors == [] and nemesis.active() == [] and nemesis.finished()
    assert toxiproxy_server.toxics(PROXY) == {} and toxiproxy_server.proxy(PROXY).enabled


def test_nemesis_without_faults_is_finished_once_started() -> None:
    ctx, _ = make_ctx()
    nemesis = Nemesis([], ctx)
    assert not nemesis.finished()
    nemesis.start()
    assert nemesis.finished() and nemesis.join(0) and nemesis.stop_all() == []


@pytest.mark.slow
def test_control_calls_use_a_real_http_client_by_default(upstream: int) -> None:
    topology = FakeTopology()
    topology.gateway_url = f"http://127.0.0.1:{upstream}"  # http.server: PUT is 501, a definite error
    ctx, _ = make_ctx(topology=topology)
    fault = GatewayFault("bank", {"error_rate": 1.0})
    with pytest.raises(httpx.HTTPStatusError) as info:
        fault.start(ctx)
    assert info.value.response.status_code == 501 and not fault.active


@pytest.mark.slow
def test_stop_all_undoes_everything_when_interrupted_mid_timeline(toxiproxy_server: ToxiproxyClient,
                                                                  proxied: str, request) -> None:
    scenario = parse_scenario(TIMELINE % ("40s", "0s", "40s"))
    ctx, events = make_ctx(toxiproxy_server)
    nemesis = Nemesis(scenario.schedule(), ctx)

    waited: list[str] = []

    def interrupt_when_active() -> None:
        try:
            wait_for(lambda: len(nemesis.active()) == 2, timeout=30, what="faults active")
        except AssertionError as exc:  # report it from the main thread, and still interrupt
            waited.append(f"{exc}; active={nemesis.active()}")
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while the main thread waits in join()

    # Python's own Ctrl-C handler, whatever an earlier test in this process left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        try:
            nemesis.start()
            threading.Thread(target=interrupt_when_active, daemon=True).start()
            nemesis.join()
        finally:
            nemesis.stop_all()
    assert not waited, waited
    assert time.monotonic() - began < 35, "stop_all must not wait for the timeline"
    assert nemesis.join(timeout=5), "every nemesis thread ended"
    assert toxiproxy_server.toxics(PROXY) == {} and toxiproxy_server.proxy(PROXY).enabled
    assert sorted((e["kind"], e["name"]) for e in events) == [("fault_end", "cut"), ("fault_end", "slow"),
                                                              ("fault_start", "cut"), ("fault_start", "slow")]
    assert nemesis.stop_all() == []  # again: harmless
    fetch(proxied)


@pytest.mark.slow
def test_nemesis_records_a_failed_start_and_goes_on(toxiproxy_server: ToxiproxyClient, proxied: str) -> None:
    scenario = parse_scenario("""
name: t
family: database
duration: 5s
timeline:
  - {at: 0s, fault: proxy_down, target: wallet_db, for: 200ms}
  - {at: 0s, fault: toxic, target: wallet_api, type: latency, attributes: {latency: 10}, for: 200ms}
""")
    ctx, events = make_ctx(toxiproxy_server)
    nemesis = Nemesis(scenario.schedule(), ctx)
    try:
        nemesis.start()
        assert nemesis.join(timeout=10)
    finally:
        nemesis.stop_all()
    assert len(nemesis.errors) == 1 and nemesis.errors[0].startswith("proxy_down-wallet_db: start failed:")
    notes = [e for e in events if e["kind"] == "note"]
    assert notes[0]["name"] == "proxy_down-wallet_db" and notes[0]["details"]["action"] == "start"
    assert [e["kind"] for e in events if e["name"] == "toxic-wallet_api-latency"] == ["fault_start", "fault_end"]


def test_context_defaults_come_from_the_topology() -> None:
    ctx = FaultContext(topology=FakeTopology(), seed=5)
    assert ctx.toxiproxy == "toxiproxy-client" and ctx.http is None
    assert ctx.rng.random() == random.Random(5).random()
    ctx.emit({"kind": "note"})  # default: events go nowhere


def test_stop_all_without_start_is_harmless() -> None:
    ctx, events = make_ctx()
    nemesis = Nemesis(parse_scenario(TIMELINE % ("1s", "0s", "1s")).schedule(), ctx)
    assert nemesis.stop_all() == [] and events == [] and nemesis.active() == []
    assert all(r["started_at"] is None for r in nemesis.records())


# -- lifecycle faults (fake topology) ------------------------------------------------------------------------
@pytest.mark.parametrize(("fault_cls", "inject"), [(KillFault, "kill"), (TerminateFault, "terminate")])
def test_kill_and_terminate_restart_on_stop(fault_cls: type[KillFault], inject: str) -> None:
    topology = FakeTopology()
    ctx, events = make_ctx(topology=topology)
    fault = fault_cls("down", "postgres")
    fault.start(ctx)
    assert not topology.running["postgres"]
    fault.stop(ctx)
    fault.stop(ctx)
    assert topology.calls == [(inject, "postgres"), ("restart", "postgres")]
    assert [e["kind"] for e in events] == ["fault_start", "fault_end"]


def test_kill_that_failed_does_not_restart_a_running_service() -> None:
    topology = FakeTopology(fail_on="kill")
    ctx, events = make_ctx(topology=topology)
    fault = KillFault("down", "wallet")
    with pytest.raises(RuntimeError):
        fault.start(ctx)
    fault.stop(ctx)
    assert topology.calls == [("kill", "wallet")] and events == []


def test_failed_restart_can_be_retried() -> None:
    topology = FakeTopology(fail_on="restart")
    ctx, events = make_ctx(topology=topology)
    fault = KillFault("down", "gateway")
    fault.start(ctx)
    with pytest.raises(RuntimeError):
        fault.stop(ctx)
    assert fault.active
    topology.fail_on = None
    fault.stop(ctx)
    assert topology.running["gateway"] and [e["kind"] for e in events] == ["fault_start", "fault_end"]


def test_pause_resumes_on_stop() -> None:
    topology = FakeTopology()
    ctx, _ = make_ctx(topology=topology)
    with PauseFault("hang", "wallet").applied(ctx):
        assert topology.calls == [("pause", "wallet")]
    assert topology.calls == [("pause", "wallet"), ("resume", "wallet")]


# -- control-API faults (httpx.MockTransport) ----------------------------------------------------------------
def recorder(responses: dict[str, list[int]] | None = None,
             export: list[dict[str, Any]] | None = None) -> tuple[list[tuple[str, str, Any]], Callable]:
    """A mock server: records (method, path, json body); `responses` scripts status codes per path."""
    seen: list[tuple[str, str, Any]] = []
    script = {k: list(v) for k, v in (responses or {}).items()}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, f"{request.url.host}{request.url.path}", body))
        assert request.url.host == "gateway.test" or request.headers["authorization"] == "Bearer admin-token"
        status = script[request.url.path].pop(0) if script.get(request.url.path) else 200
        if request.url.path == "/admin/export":
            return httpx.Response(200, json={"accounts": export or [], "transactions": [], "audit": {}})
        return httpx.Response(status, json={})

    return seen, handler


def test_gateway_fault_puts_behaviour_and_resets() -> None:
    seen, handler = recorder()
    ctx, events = make_ctx(handler=handler)
    with GatewayFault("bank", {"error_rate": 0.3, "decline_rate": 0.0, "hang_s": None}).applied(ctx):
        pass
    assert seen == [("PUT", "gateway.test/control/behaviour", {"error_rate": 0.3, "decline_rate": 0.0}),
                    ("POST", "gateway.test/control/reset-behaviour", None)]
    assert events[0]["details"] == {"fault": "gateway", "behaviour": {"error_rate": 0.3, "decline_rate": 0.0}}


def test_maintenance_retries_a_busy_wallet_and_switches_off() -> None:
    seen, handler = recorder({"/admin/maintenance": [503, 200, 200]})
    ctx, _ = make_ctx(handler=handler)
    with MaintenanceFault("mw", retry_after_s=6).applied(ctx):
        pass
    assert [body for _, _, body in seen] == [{"enabled": True, "retry_after_s": 6}] * 2 + [
        {"enabled": False, "retry_after_s": 6}]


def test_maintenance_gives_up_on_a_definite_error() -> None:
    seen, handler = recorder({"/admin/maintenance": [401]})
    ctx, _ = make_ctx(handler=handler)
    with pytest.raises(httpx.HTTPStatusError):
        MaintenanceFault("mw", retry_after_s=6).start(ctx)
    assert len(seen) == 1


def accounts(n: int) -> list[dict[str, Any]]:
    return [{"account_id": f"a{i}", "user_id": f"u{i}", "username": f"n{i}", "balance": 0,
             "status": "frozen" if i == 0 else "active"} for i in range(n)]


def test_freeze_picks_active_accounts_by_seed_and_unfreezes_exactly_them() -> None:
    picks = []
    for _ in range(2):
        seen, handler = recorder(export=accounts(6))
        ctx, events = make_ctx(handler=handler, seed=3)
        fault = FreezeFault("freeze", count=2)
        with fault.applied(ctx):
            frozen = [p.split("/")[3] for m, p, _ in seen if p.endswith("/freeze")]
        unfrozen = [p.split("/")[3] for m, p, _ in seen if p.endswith("/unfreeze")]
        assert len(frozen) == 2 and "a0" not in frozen and sorted(unfrozen) == sorted(frozen)
        assert events[0]["details"]["accounts"] == frozen
        # per-account times for frozen_accounts: frozen for certain from frozen_at until unfreezing_at
        assert sorted(events[0]["details"]["frozen_at"]) == sorted(frozen)
        end = events[-1]["details"]
        assert sorted(end["unfreezing_at"]) == sorted(frozen) and end["accounts"] == sorted(frozen)
        assert all(events[0]["details"]["frozen_at"][a] <= end["unfreezing_at"][a] for a in frozen)
        picks.append(frozen)
    assert picks[0] == picks[1], "same seed, same accounts"


def test_freeze_failing_half_way_unfreezes_what_it_froze() -> None:
    seen, handler = recorder(export=accounts(5))
    ctx, events = make_ctx(handler=handler)
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/freeze"):
            calls["n"] += 1
            if calls["n"] == 2:
                return httpx.Response(404, json={})
        return handler(request)

    ctx.http = httpx.Client(transport=httpx.MockTransport(flaky))
    fault = FreezeFault("freeze", count=3)
    with pytest.raises(httpx.HTTPStatusError):
        fault.start(ctx)
    fault.stop(ctx)
    frozen = [p for _, p, _ in seen if p.endswith("/freeze")]
    unfrozen = [p for _, p, _ in seen if p.endswith("/unfreeze")]
    assert len(frozen) == 1 and unfrozen == [frozen[0].replace("/freeze", "/unfreeze")]
    assert fault.frozen == [] and events == []
