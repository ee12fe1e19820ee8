"""Fault efficacy: every fault window shows evidence that it bit.

A scenario whose fault silently did nothing (a toxic on a proxy the wallet no longer uses, a kill of
the wrong process, a maintenance switch the wallet ignores) passes every other invariant while testing
nothing. So each fault window (events.jsonl fault_start/fault_end) is compared with the calm parts of
the run (before the first fault; from CALM_AFTER_S after the last one healed: the calmer of the two, see
Calm), on the
ops the fault can reach (gateway faults: deposits and withdrawals; any
other: every client op), and counts as "bit" on any of:

* **codes**: answers the fault's target produces when it is down or slow (EXPECTED_CODES: e.g.
  DATABASE_UNAVAILABLE for the database, GATEWAY_ERROR/GATEWAY_TIMEOUT or a 202 pending for the
  gateway, MAINTENANCE), clearly more often than in the calm parts (see _more);
* **errors rose**: server or transport errors (not the client's own mistakes) at a rate well above
  the calm ops';
* **latency rose**, where the fault is one that slows (latency_rule): a latency toxic must add its
  configured latency to the median (half of it on the client hop), a pause must stall ops by a second, bandwidth/slicer must clearly
  slow the median (setup ops, which hash passwords, left out);
* **pid changed** (kill/terminate): the service's pid before injection and after healing differ (a
  known, unchanged pid means the kill did not happen: no effect, whatever else moved).
* **freeze**: ACCOUNT_FROZEN answered on a frozen account while it was frozen (per-account freeze and
  unfreeze times from the fault's events; money that still moved out is frozen_accounts' finding).

A window with fewer than MIN_OPS ops in reach (or fewer than MIN_OPS calm ops to compare with,
when only a comparison could tell), or a sparse fault (is_sparse) that left no sign, is "not judged"
and does not fail the run; any other window with no evidence is "no effect" and fails it.

`fault_write_rate` (money writes invoked inside fault windows per second of fault) is computed here
too: the verdict and the summary show it (a fault window with a thin load cannot catch short anomalies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.catalog import CLIENT_ERROR_CODES
from walletchaos.checks.index import RunIndex
from walletchaos.history import AUDIT_KIND, KINDS, WRITE_KINDS, FaultWindow

NAME = "fault_efficacy"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "no_effect",
)
MIN_OPS = 5
EXTERNAL_KINDS = frozenset({"deposit", "withdrawal"})  # the only ops that reach the gateway
CALM_AFTER_S = 2.0  # ops this long after the last fault healed count as calm (capped by the recovery time)
SETUP_KINDS = frozenset({"register", "login"})  # password hashing on purpose: not in latency comparisons
EXPECTED_CODES: dict[str, frozenset[str]] = {  # by fault target, or by fault kind for wallet-level faults
    "wallet_db": frozenset({"DATABASE_UNAVAILABLE"}),
    "postgres": frozenset({"DATABASE_UNAVAILABLE"}),
    "gateway": frozenset({"GATEWAY_ERROR", "GATEWAY_TIMEOUT"}),
    "maintenance": frozenset({"MAINTENANCE"}),
    "freeze": frozenset({"ACCOUNT_FROZEN"}),
}
# errors (or the target's codes, or 202 pending) rose: at least MIN_ERRORS of them, at a rate ≥ 2 × the
# calm rate + ERROR_RATE_MARGIN. Sparse faults (reset_peer on 30 % of new connections) show as a few
# percent; an overloaded pool shows DATABASE_UNAVAILABLE now and then with no fault at all.
ERROR_RATE_MARGIN = 0.01
MIN_ERRORS = 3


def _more(n: int, total: int, calm_rate: float) -> bool:
    """n of total is clearly more than the calm rate (with a calm rate of 0, a single one is)."""
    if not calm_rate:
        return n >= 1
    return n >= MIN_ERRORS and total > 0 and n / total >= 2 * calm_rate + ERROR_RATE_MARGIN


SPARSE_TOXICS = frozenset({"reset_peer", "limit_data", "slow_close"})
MULTI_HOP_TARGETS = frozenset({"wallet_db", "postgres"})  # a request crosses the DB hop several times


def is_sparse(kind: str, details: Mapping[str, Any]) -> bool:
    """A fault that hits only some connections or requests (toxicity < 1, resets): a wallet that absorbs
    it (retries, pool health checks) cannot be told from one it never reached, so no sign is "not judged"."""
    return kind == "toxic" and (details.get("type") in SPARSE_TOXICS or float(details.get("toxicity", 1.0)) < 1.0)
# latency rose (faults without a configured size, see latency_rule): p50 ≥ max(1.25 × calm, calm + 50 ms).
# Relative, because on a CPU-starved box the calm p50 is itself hundreds of ms and a toxic adds to it.
P50_FACTOR, P50_MARGIN_MS = 1.25, 50.0


def _rose(during: float | None, calm: float | None, factor: float, margin_ms: float) -> bool:
    return during is not None and calm is not None and during >= max(factor * calm, calm + margin_ms)

Op = dict[str, Any]


def _pct(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _latency_ms(op: Op) -> float | None:
    lat = op.get("latency_ms")
    if lat is None and op.get("complete_ts") is not None:
        lat = (op["complete_ts"] - op["invoke_ts"]) * 1000.0
    return lat


def is_server_error(op: Op) -> bool:
    """Not ok, not an answer to the client's own mistake (a deliberate one is tagged), and not overload
    shedding (RATE_LIMITED depends on how busy the box is, not on the fault)."""
    if op["outcome"] == "ok" or op.get("tag"):
        return False
    return op.get("code") not in CLIENT_ERROR_CODES and op.get("code") != "RATE_LIMITED"


LatencyRule = tuple[str, float, float]  # (quantile "p50"/"p95", factor, margin ms): rose ≥ max(f·calm, calm + m)
GENERIC: LatencyRule = ("p50", P50_FACTOR, P50_MARGIN_MS)
SLOW_TOXICS = frozenset({"bandwidth", "slicer", "slow_close"})  # toxics whose only effect is time
PAUSE_RISE_MS = 1000.0  # a paused service stalls every op in reach for (most of) the pause


def latency_rule(kind: str, details: Mapping[str, Any]) -> LatencyRule | None:
    """Which latency rise counts as evidence for this fault, or None when only codes/errors can be.

    On a CPU-starved box a calm p50 of 15 ms can become 100 ms in the window with nothing injected,
    just because the load is in full swing: so a latency toxic must add at least its own configured
    latency (× toxicity) to the median (every op in reach crosses the hop at least once), a pause must
    stall ops by PAUSE_RISE_MS, and faults that fail requests (reset_peer, timeout, proxy_down, kill,
    maintenance, freeze) must show as errors or codes, never as "a bit slower"."""
    if kind == "toxic":
        kind_ = details.get("type")
        if kind_ == "latency":
            attrs = details.get("attributes") or {}
            # ops straddling the window's edges pay part of it: half the size on the client hop (crossed
            # once each way), the full size on the DB hop (crossed by every statement and the commit)
            share = 1.0 if details.get("target") in MULTI_HOP_TARGETS else 0.5
            return ("p50", 1.0, share * float(attrs.get("latency", 0)) * float(details.get("toxicity", 1.0)))
        return GENERIC if kind_ in SLOW_TOXICS else None
    if kind == "pause":
        return ("p95", 1.0, PAUSE_RISE_MS)
    if kind == "gateway":
        delay = (details.get("behaviour") or {}).get("delay_ms")
        return ("p50", 1.0, float(delay)) if delay else None
    if kind in ("proxy_down", "kill", "terminate", "maintenance", "freeze"):
        return None
    return GENERIC  # a fault kind this check does not know: any clear slowdown


class Sample:
    """What a set of ops looked like: count, server/transport error rate, latency quantiles, codes."""

    def __init__(self, ops: Sequence[Op]) -> None:
        self.n = len(ops)
        self.errors = sum(1 for o in ops if is_server_error(o))
        lat = sorted(x for o in ops if o["kind"] not in SETUP_KINDS and (x := _latency_ms(o)) is not None)
        self.p50, self.p95 = _pct(lat, 0.5), _pct(lat, 0.95)
        self.codes: dict[str, int] = {}
        self.pending = 0
        for o in ops:
            if o.get("code"):
                self.codes[o["code"]] = self.codes.get(o["code"], 0) + 1
            if o.get("status") == 202:
                self.pending += 1

    @property
    def error_rate(self) -> float:
        return self.errors / self.n if self.n else 0.0

    def brief(self) -> dict[str, Any]:
        r = (lambda v: None if v is None else round(v, 1))
        return {"ops": self.n, "error_rate": round(self.error_rate, 3), "p50_ms": r(self.p50), "p95_ms": r(self.p95)}


class Calm:
    """The calm parts of the run to compare a window with: before the first fault, and from CALM_AFTER_S
    after the last one healed; per metric the calmer of the two (each with ≥ MIN_OPS ops). On a busy box
    the start is slow (Locust ramping, every user registering at once); after a fault the wallet may not
    have recovered (recovery's finding, not a reason to call the fault harmless)."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.all = samples
        self.samples = [x for x in samples if x.n >= MIN_OPS]

    @property
    def judged(self) -> bool:
        return bool(self.samples)

    def rate(self, count: Callable[[Sample], int]) -> float:
        return min((count(x) / x.n for x in self.samples), default=0.0)

    def latency(self, q: str) -> float | None:
        return min((v for x in self.samples if (v := getattr(x, q)) is not None), default=None)

    def brief(self) -> dict[str, Any]:
        return dict(zip(("before", "after"), (x.brief() for x in self.all)))


def _window_key(w: FaultWindow, kind: str) -> str:
    return kind if kind in ("maintenance", "freeze") else (w[3] or "")


def _fault_event(events: Sequence[Mapping[str, Any]], w: FaultWindow, kind: str) -> Mapping[str, Any]:
    start, end, name, target = w
    best: Mapping[str, Any] = {}
    for e in events:
        if e.get("name") == name and e.get("target") == target and e.get("kind") == kind:
            if kind == "fault_start" and abs(e["ts"] - start) < 1e-6 or kind == "fault_end" and abs(e["ts"] - end) < 1e-6:
                return e
            best = best or e
    return best


def judge_window(w: FaultWindow, start_event: Mapping[str, Any], end_event: Mapping[str, Any],
                 ops: Sequence[Op], before: Sequence[Op], after: Sequence[Op] = ()) -> dict[str, Any]:
    """{"verdict": bit | no effect | not judged, "evidence": [...], numbers} for one fault window."""
    start, end, name, target = w
    details = {**(start_event.get("details") or {}), **(end_event.get("details") or {})}
    kind = details.get("fault", "")
    key = _window_key(w, kind)
    gateway = key == "gateway"
    reach = [o for o in ops if not gateway or o["kind"] in EXTERNAL_KINDS]
    during = Sample(reach)
    calm = Calm([Sample([o for o in part if not gateway or o["kind"] in EXTERNAL_KINDS]) for part in (before, after)])
    out: dict[str, Any] = {"fault": name, "kind": kind, "target": target, "start": start, "end": end,
                           "during": during.brief(), "calm": calm.brief(), "evidence": []}
    evidence: list[str] = out["evidence"]

    if kind in ("kill", "terminate"):
        before, after = details.get("pid_before"), details.get("pid_after")
        out.update(pid_before=before, pid_after=after)
        if before is not None and after is not None:
            if before != after:
                evidence.append(f"pid changed {before} → {after}")
                out["verdict"] = "bit"
            else:
                out["verdict"] = "no effect"
                out["why"] = f"pid {before} unchanged: the service was not restarted"
            return out

    if kind == "freeze":
        frozen = set(details.get("accounts") or ())
        since, until = details.get("frozen_at") or {}, details.get("unfreezing_at") or {}
        # an op counts only while its account was surely frozen (each account has its own edges)
        mine = [o for o in ops if o.get("account_id") in frozen and o["kind"] in WRITE_KINDS and not o.get("tag")
                and o["invoke_ts"] >= since.get(o["account_id"], start)
                and (o.get("complete_ts") or o["invoke_ts"]) <= until.get(o["account_id"], end)]
        refused = sum(1 for o in mine if o.get("code") == "ACCOUNT_FROZEN")
        moved = [o["op_id"] for o in mine if o["outcome"] == "ok" and _debits(o, frozen)]
        out.update(frozen_accounts=sorted(frozen), writes_on_frozen=len(mine), refused_frozen=refused)
        if moved:
            out["moved_op_ids"] = moved[:5]  # money out of a frozen account: frozen_accounts' finding
        if refused:
            evidence.append(f"ACCOUNT_FROZEN ×{refused} on the {len(frozen)} frozen accounts")
            out["verdict"] = "bit"
        elif not mine:
            out["verdict"], out["why"] = "not judged", "no writes on the frozen accounts while they were frozen"
        else:
            out["verdict"] = "no effect"
            out["why"] = f"{len(mine)} write(s) on frozen accounts, none refused ({len(moved)} moved money out)"
        return out

    if during.n < MIN_OPS:
        out["verdict"], out["why"] = "not judged", f"{during.n} ops in reach during the window (< {MIN_OPS})"
        return out
    codes = EXPECTED_CODES.get(key, frozenset())
    seen = {c: n for c, n in during.codes.items()
            if c in codes and _more(n, during.n, calm.rate(lambda x, c=c: x.codes.get(c, 0)))}
    if seen:
        evidence.append("codes " + ", ".join(f"{c} ×{n}" for c, n in sorted(seen.items())))
    if gateway and _more(during.pending, during.n, calm.rate(lambda x: x.pending)):
        evidence.append(f"202 pending ×{during.pending}")
    if calm.judged:
        calm_errors = calm.rate(lambda x: x.errors)
        if _more(during.errors, during.n, calm_errors):
            evidence.append(f"server/transport errors {during.error_rate:.0%} (calm {calm_errors:.0%})")
        rule = latency_rule(kind, {**details, "target": target})
        if rule is not None:
            q, factor, margin = rule
            now, quiet = getattr(during, q), calm.latency(q)
            if _rose(now, quiet, factor, margin):
                evidence.append(f"{q} latency {now:.0f} ms (calm {quiet:.0f} ms, needed +{margin:.0f} ms)")
            out["latency_rule"] = {"quantile": q, "factor": factor, "margin_ms": margin}
    if evidence:
        out["verdict"] = "bit"
    elif not calm.judged:
        out["verdict"], out["why"] = "not judged", f"fewer than {MIN_OPS} calm ops to compare with"
    elif is_sparse(kind, details):
        out["verdict"], out["why"] = "not judged", "a sparse fault (some connections only) left no sign"
    else:
        out["verdict"] = "no effect"
        out["why"] = "no fault codes, no rise in errors or latency against the calm ops"
    return out


def _debits(op: Op, accounts: set[str]) -> bool:
    args = op.get("args") or {}
    if op["kind"] == "transfer":
        return args.get("from_account_id") in accounts
    return op["kind"] == "withdrawal" and args.get("account_id") in accounts


def _merged_seconds(windows: Iterable[FaultWindow]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for s, e, _, _ in sorted(windows):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def fault_write_rate(history: Iterable[Op], windows: Sequence[FaultWindow]) -> float | None:
    """Money writes invoked inside fault windows per second of fault (None: no fault window)."""
    spans = _merged_seconds(windows)
    seconds = sum(e - s for s, e in spans)
    if seconds <= 0:
        return None
    n = sum(1 for o in history if o["kind"] in WRITE_KINDS and any(s <= o["invoke_ts"] <= e for s, e in spans))
    return round(n / seconds, 1)


def check(history: Sequence[Op], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    windows = list(ctx.fault_windows)
    if not windows:
        return CheckResult(NAME, True, "not judged: no fault in this scenario", [], {"judged": False, "windows": 0})
    found = Findings(ctx.max_counterexamples)
    if index is not None and index.history is history:
        client = list(index.ops(KINDS))
    else:
        client = [o for o in history if o["kind"] != AUDIT_KIND]
    # calm: before the first fault; only when that is too thin (Locust still starting on a busy box),
    # also after the last fault once CALM_AFTER_S passed (a wallet that never recovers is recovery's finding)
    first = min(w[0] for w in windows)
    settled = max(w[1] for w in windows) + min(ctx.effective_grace_s, CALM_AFTER_S)
    before = [o for o in client if (o.get("complete_ts") or o["invoke_ts"]) < first]
    after = [o for o in client if o["invoke_ts"] > settled]
    judged: list[dict[str, Any]] = []
    for w in windows:
        start, end = w[0], w[1]
        ops = [o for o in client if o["invoke_ts"] <= end and (o.get("complete_ts") or o["invoke_ts"]) >= start]
        r = judge_window(w, _fault_event(ctx.events, w, "fault_start"), _fault_event(ctx.events, w, "fault_end"),
                         ops, before, after)
        judged.append(r)
        if r["verdict"] == "no effect":
            found.add("no_effect", **{k: v for k, v in r.items() if k != "evidence"})
    counts = {v: sum(1 for r in judged if r["verdict"] == v) for v in ("bit", "no effect", "not judged")}
    rate = fault_write_rate(client, windows)
    stats = {"judged": True, "windows": judged, **{k.replace(" ", "_"): n for k, n in counts.items()},
             "fault_write_rate": rate}
    summary = (f"{counts['bit']} of {len(judged)} fault window(s) bit"
               + (f", {counts['not judged']} not judged (too few ops in reach or to compare with)"
                  if counts["not judged"] else "")
               + ("" if rate is None else f"; {rate} money writes/s during faults"))
    result = found.result(NAME, summary, stats)
    if not result.passed:
        names = ", ".join(r["fault"] for r in judged if r["verdict"] == "no effect")
        result.summary = f"no effect: {names} ({summary})"
    return result
