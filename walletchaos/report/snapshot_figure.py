"""The bank snapshots (GET /admin/audit during the run, kind `audit`) against the fault windows.

Two lines: Σ user balances as each snapshot saw it, and what the books say it must be
(opening + in − out − pending withdrawal holds); a snapshot where they differ is marked, and a
snapshot that failed (the wallet could not answer) is a grey tick at the bottom. Shading and phase
lines are the other figures' (report/figures.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from walletchaos.checks.bank_snapshots import HOLDS
from walletchaos.checks.conservation import books_total
from walletchaos.history import AUDIT_KIND
from walletchaos.report.figures import _layout
from walletchaos.report.timeseries import RunAnalysis


def snapshot_figure(history: Sequence[Mapping[str, Any]], a: RunAnalysis, opening: int = 0) -> go.Figure | None:
    snaps = [op for op in history if op.get("kind") == AUDIT_KIND]
    if not snaps:
        return None
    t, total, books, bad_t, bad_total, failed_t = [], [], [], [], [], []
    for op in snaps:
        x = round(op["invoke_ts"] - a.t0, 3)
        audit = op.get("audit")
        if op.get("outcome") != "ok" or not isinstance(audit, Mapping):
            failed_t.append(x)
            continue
        expected = books_total(opening, audit) - (audit.get(HOLDS) or 0)
        t.append(x)
        total.append(audit["total_balance"])
        books.append(expected)
        if audit["total_balance"] != expected:
            bad_t.append(x)
            bad_total.append(audit["total_balance"])
    low = min([*total, *books], default=0)
    traces = [
        go.Scatter(x=t, y=books, name="books: opening + in − out − holds", mode="lines",
                   line={"color": "#64748b", "width": 3}),
        go.Scatter(x=t, y=total, name="Σ balances (snapshot)", mode="lines+markers",
                   line={"color": "#2563eb", "width": 1.4}, marker={"size": 3}),
        go.Scatter(x=bad_t, y=bad_total, name="books do not balance", mode="markers",
                   marker={"color": "#dc2626", "size": 9, "symbol": "x"}),
        go.Scatter(x=failed_t, y=[low] * len(failed_t), name="snapshot failed", mode="markers",
                   marker={"color": "#94a3b8", "size": 7, "symbol": "line-ns-open"}),
    ]
    return go.Figure(traces, _layout(a, f"Bank snapshots ({len(snaps)} audits during the run)", "minor units"))


def snapshot_figures_json(history: Sequence[Mapping[str, Any]], a: RunAnalysis, opening: int = 0) -> dict[str, str]:
    """{"snapshots": figure JSON} to add to report.figures.figures_json's, or {} without snapshots."""
    fig = snapshot_figure(history, a, opening)
    return {} if fig is None else {"snapshots": fig.to_json()}
