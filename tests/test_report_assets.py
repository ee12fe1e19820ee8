"""Report weight: a suite carries plotly.js once (assets/plotly-<version>.min.js), every run page of the
suite references it by a relative path that exists on disk; a lone run still inlines it (one file)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from plotly.offline import get_plotlyjs

import walletchaos.runner as runner
from bench.suite import report_weight
from tests.test_report import make_run
from walletchaos.report.html import plotly_asset_name, share_plotly, write_report
from walletchaos.runner import RunOptions, RunResult, run_suite

MB = 1_000_000


class Refs(HTMLParser):
    """Every script src / link href / a href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"] or "")
        elif tag == "script":
            self.inline_scripts += 1
        if tag in ("a", "link") and a.get("href"):
            self.links.append(a["href"] or "")


def refs(page: Path) -> Refs:
    parser = Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def assert_offline(page: Path) -> None:
    """No network at view time: every script/link is relative and exists on disk beside the page."""
    r = refs(page)
    for url in r.scripts + r.links:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page.name}: network URL {url}"
        if url.startswith("#"):
            continue
        assert (page.parent / unquote(parts.path)).exists(), f"{page}: {url} does not exist on disk"


def test_lone_run_inlines_plotly_and_is_one_file(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "reports" / "20250101T000000Z-db-connection-reset")
    page = write_report(run_dir)
    assert refs(page).scripts == []
    assert page.read_text().count(get_plotlyjs()) == 1
    assert not (tmp_path / "reports" / "assets").exists()
    assert_offline(page)


def test_run_below_a_shared_asset_references_it(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    asset = share_plotly(suite)
    assert asset == suite / plotly_asset_name() and asset.read_text() == get_plotlyjs()
    run_dir = make_run(suite / "a-db-reset", n_ops=20_000)
    page = write_report(run_dir)
    assert refs(page).scripts == [f"../{plotly_asset_name()}"]
    html = page.read_text()
    assert get_plotlyjs()[:2000] not in html  # the library is not in the page
    assert 'data-figure="fig-throughput"' in html and "Plotly.newPlot" in html
    assert page.stat().st_size < 1 * MB, f"a run page weighs {page.stat().st_size / MB:.2f} MB"
    assert_offline(page)


def test_share_plotly_is_idempotent_and_repairs_a_truncated_asset(tmp_path: Path) -> None:
    asset = share_plotly(tmp_path)
    stamp = asset.stat().st_mtime_ns
    assert share_plotly(tmp_path) == asset and asset.stat().st_mtime_ns == stamp  # not rewritten
    asset.write_text("truncated")
    share_plotly(tmp_path)
    assert asset.read_text() == get_plotlyjs()
    assert [p.name for p in asset.parent.iterdir()] == [asset.name]  # no temp file left


def test_run_suite_writes_one_asset_and_light_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_suite's wiring, with each scenario run replaced by a synthetic run directory judged as usual."""

    class Sc:
        def __init__(self, name: str) -> None:
            self.name = name

    def fake_run(sc: Any, opts: RunOptions, console: Any = None) -> RunResult:
        run_dir = runner.new_run_dir(opts.report_dir, sc.name)
        make_run(run_dir, n_ops=5_000)
        write_report(run_dir)
        return RunResult(sc.name, run_dir, {"scenario": sc.name, "passed": True, "results": []})

    monkeypatch.setattr(runner, "run_scenario", fake_run)
    names = [f"scenario-{i}" for i in range(6)]
    suite_dir, results = run_suite([Sc(n) for n in names], RunOptions(report_dir=tmp_path, show_progress=False))
    assert [r.scenario for r in results] == names
    assert [p.name for p in (suite_dir / "assets").iterdir()] == [Path(plotly_asset_name()).name]
    pages = [r.run_dir / "index.html" for r in results]
    for page in pages:
        assert refs(page).scripts == [f"../{plotly_asset_name()}"]
        assert_offline(page)
    assert_offline(suite_dir / "index.html")
    html_bytes = sum(p.stat().st_size for p in suite_dir.rglob("*") if p.suffix in (".html", ".js"))
    per_scenario = html_bytes / len(names)
    # 6 pages + 1 asset: the library counts once, so the suite weighs far less than 6 inlined pages
    assert html_bytes < len(get_plotlyjs()) + len(names) * 1 * MB
    assert per_scenario < 1.5 * MB, f"{per_scenario / MB:.2f} MB a scenario"
    # the bench figure counts the same bytes, once (reports/latest is a symlink to the suite: not followed)
    assert (tmp_path / "latest").is_symlink()
    weight = report_weight(tmp_path, len(names))
    assert weight["report_mb_per_scenario"] == pytest.approx(per_scenario / MB, abs=0.001)
    assert weight["report_page_mb_max"] < 1


def test_detect_matrix_runs_share_one_asset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import walletchaos.detect as detect

    class Sc:
        def __init__(self, name: str) -> None:
            self.name, self.duration_s = name, 10.0

    def fake_run(sc: Any, opts: RunOptions, console: Any = None) -> RunResult:
        run_dir = runner.new_run_dir(opts.report_dir, sc.name)
        make_run(run_dir, n_ops=500)
        write_report(run_dir)
        return RunResult(sc.name, run_dir, {"scenario": sc.name, "passed": True, "results": []})

    monkeypatch.setattr(detect, "run_scenario", fake_run)
    jobs = [detect.Job(None, Sc(f"s{i}"), 1) for i in range(3)]
    cells = detect.run_jobs(jobs, tmp_path, duration_s=None)
    assert len(cells) == 3 and (tmp_path / "runs" / plotly_asset_name()).is_file()
    for cell in cells:
        page = Path(cell.run_dir) / "index.html"
        assert refs(page).scripts == [f"../{plotly_asset_name()}"]
        assert_offline(page)


def test_no_template_loads_anything_from_the_network() -> None:
    templates = Path(runner.__file__).parent / "report" / "templates"
    for t in templates.glob("*.j2"):
        text = t.read_text()
        assert not re.search(r"""<script[^>]+src\s*=\s*["']?(https?:)?//""", text, re.I), t.name
        assert not re.search(r"""<link[^>]+href\s*=\s*["']?(https?:)?//""", text, re.I), t.name
