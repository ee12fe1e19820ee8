"""Plotly figures of a run (throughput, latency, error rate), all sharing the same fault shading.

Figures leave as JSON strings; html.py embeds plotly.js once and calls Plotly.newPlot on each, so
the page stays self-contained and the library is not repeated per figure.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from walletchaos.report.timeseries import RunAnalysis

OUTCOME_COLORS = {"ok": "#16a34a", "fail": "#f59e0b", "unknown": "#7c3aed"}
FAULT_FILL = "rgba(220, 38, 38, 0.13)"
PHASE_LINE = "#64748b"


def _decorations(a: RunAnalysis) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shapes + annotations: a shaded rectangle per fault window, a dotted line per phase start."""
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for f in a.faults:
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": f.start, "x1": f.end,
                       "y0": 0, "y1": 1, "fillcolor": FAULT_FILL, "line": {"width": 0}, "layer": "below",
                       "name": f"fault: {f.label}"})
        notes.append({"x": f.start, "y": 0.97, "xref": "x", "yref": "paper", "text": f.label,
                      "showarrow": False, "xanchor": "left", "yanchor": "top",
                      "font": {"size": 10, "color": "#b91c1c"}})
    for ts, name in a.phase_marks:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": ts, "x1": ts, "y0": 0, "y1": 1,
                       "line": {"color": PHASE_LINE, "width": 1, "dash": "dot"}, "name": f"phase: {name}"})
        notes.append({"x": ts, "y": 1.0, "xref": "x", "yref": "paper", "text": name, "showarrow": False,
                      "xanchor": "left", "yanchor": "bottom", "font": {"size": 10, "color": PHASE_LINE}})
    return shapes, notes


def _layout(a: RunAnalysis, title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    shapes, notes = _decorations(a)
    x_min = min([0.0, *a.series.t[:1]])
    x_max = max(a.span_s, x_min + 1.0)
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "template": "plotly_white", "height": 300, "margin": {"l": 60, "r": 48, "t": 60, "b": 40},
        "modebar": {"orientation": "v"},  # keeps the buttons off the legend (top right)
        "xaxis": {"title": {"text": "seconds since start"}, "range": [x_min, x_max + 0.03 * (x_max - x_min)]},
        "yaxis": {"title": {"text": y_title}},
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.14, "yanchor": "bottom",
                   "traceorder": "normal"},
        "hovermode": "x unified", "shapes": shapes, "annotations": notes, **extra,
    }


def throughput_figure(a: RunAnalysis) -> go.Figure:
    s = a.series
    per_s = 1.0 / a.width_s
    traces = [go.Bar(x=s.t, y=[n * per_s for n in getattr(s, outcome)], name=outcome,
                     marker={"color": color, "line": {"width": 0}}, offset=0, width=a.width_s)
              for outcome, color in OUTCOME_COLORS.items()]
    return go.Figure(traces, _layout(a, "Throughput (completed ops/s by outcome)", "ops/s",
                                     barmode="stack", bargap=0))


def latency_figure(a: RunAnalysis) -> go.Figure:
    s = a.series
    colors = {"p50": "#2563eb", "p95": "#f59e0b", "p99": "#dc2626"}
    traces = [go.Scatter(x=s.t, y=getattr(s, q), name=q, mode="lines", line={"color": c, "width": 1.6},
                         connectgaps=False)
              for q, c in colors.items()]
    return go.Figure(traces, _layout(a, "Latency (ms, log scale)", "ms", yaxis={"type": "log", "dtick": 1, "title": {"text": "ms"}}))


def error_rate_figure(a: RunAnalysis) -> go.Figure:
    s = a.series
    traces = [
        go.Scatter(x=s.t, y=s.error_pct, name="all non-ok", mode="lines", line={"color": "#f59e0b", "width": 1.4}),
        go.Scatter(x=s.t, y=s.server_error_pct, name="server/transport (excl. client 4xx)", mode="lines",
                   line={"color": "#dc2626", "width": 1.8}),
    ]
    return go.Figure(traces, _layout(a, "Error rate (% of completed ops)", "%",
                                     yaxis={"range": [0, 100], "title": {"text": "%"}}))


def figures_json(a: RunAnalysis) -> dict[str, str]:
    """Figure id → plotly JSON, in page order."""
    return {
        "throughput": throughput_figure(a).to_json(),
        "latency": latency_figure(a).to_json(),
        "errors": error_rate_figure(a).to_json(),
    }
