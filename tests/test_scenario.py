"""Scenario language: the catalog loads, bad files give one readable line, scaling and schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from walletchaos.scenario import (FAMILIES, FAULT_KINDS, ScenarioError, load_catalog, load_scenario,
                                  parse_duration, parse_scenario)

CATALOG = Path(__file__).resolve().parents[1] / "scenarios"

GOOD = """\
name: sample
description: a sample
family: database
anomaly: database errors
load: {users: 20, spawn_rate: 10, mix: default, processes: 1}
duration: 60s
timeline:
  - {at: 10s, fault: toxic, target: wallet_db, type: reset_peer, attributes: {timeout: 0}, toxicity: 0.3, for: 20s}
  - {at: 5s, jitter: 3s, fault: kill, target: postgres, for: 2s}
  - {at: 40s, jitter: 5s, fault: gateway, behaviour: {error_rate: 0.5}, for: 500ms}
expect:
  invariants: all
  errors_allowed: [DATABASE_UNAVAILABLE]
  recovery_within: 10s
"""


def error_of(text: str, tmp_path: Path, name: str = "x.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    return message


# -- catalog ------------------------------------------------------------------------------------------------
def test_catalog_loads_and_covers_every_family_and_fault_kind() -> None:
    catalog = load_catalog(CATALOG)
    assert len(catalog) >= 16
    assert {s.family for s in catalog} == set(FAMILIES)
    used = {step.fault for s in catalog for step in s.timeline}
    assert used == set(FAULT_KINDS)
    for s in catalog:
        assert s.description and s.anomaly, s.name
        assert (CATALOG / f"{s.name}.yaml").is_file(), f"{s.name}: file name should match the scenario name"
        assert s.duration_s <= 30, f"{s.name}: keep catalog runs short"
        for planned in s.schedule():
            assert 0 <= planned.start_s < planned.end_s <= s.duration_s


def test_catalog_names_the_expected_codes_of_each_fault_family() -> None:
    by_name = {s.name: s for s in load_catalog(CATALOG)}
    assert by_name["baseline"].expect.errors_allowed == []
    assert "DATABASE_UNAVAILABLE" in by_name["db-crash"].expect.errors_allowed
    assert "GATEWAY_TIMEOUT" in by_name["gateway-slow"].expect.errors_allowed
    assert by_name["maintenance-window"].expect.errors_allowed == ["MAINTENANCE"]
    assert "RATE_LIMITED" in by_name["peak-hour-congestion"].expect.errors_allowed
    peak = by_name["peak-hour-congestion"].load
    assert max(stage.users for stage in peak.stages) > 4 * peak.users


def test_catalog_rejects_duplicate_names(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(ScenarioError, match=r"b\.yaml: name: 'sample' is already used by .*a\.yaml"):
        load_catalog(tmp_path)


def test_empty_catalog_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no scenario files"):
        load_catalog(tmp_path)


# -- one-line errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "expected"), [
    (("toxicity: 0.3", "toxicty: 0.3"), "timeline[0]: unknown key 'toxicty' (allowed: at, attributes, fault, for,"),
    (("for: 20s}", "for: 20 sec}"), "timeline[0].for: must be a duration like '10s' (got '20 sec')"),
    (("target: wallet_db", "target: wallet_dbx"), "timeline[0].target: unknown proxy 'wallet_dbx' (one of: "
                                                 "wallet_api, wallet_db, gateway)"),
    (("target: wallet_db", "target: postgres"), "timeline[0].target: 'postgres' is a service; toxic faults "
                                               "target a proxy"),
    (("target: postgres", "target: wallet_db"), "timeline[1].target: 'wallet_db' is a proxy; process lifecycle "
                                               "faults target a service"),
    (("duration: 60s", "duration: 25s"), "timeline[0].for: the fault may end at 30s (at 10s + for 20s), after "
                                         "the load ends at 25s"),
    (("duration: 60s", "duration: 44s"), "timeline[2].for: the fault may end at 45.5s (at 40s + jitter 5s + "
                                         "for 500ms)"),
    (("fault: gateway", "fault: bank"), "timeline[2].fault: unknown fault 'bank' (one of: toxic,"),
    (("type: reset_peer, attributes: {timeout: 0}", "type: latency, attributes: {jitter: 5}"),
     "timeline[0].attributes: a latency toxic needs 'latency'"),
    (("[DATABASE_UNAVAILABLE]", "[INTERNAL_ERROR]"), "expect.errors_allowed: INTERNAL_ERROR can never be allowed"),
    (("invariants: all", "invariants: [ledger, speed]"), "expect.invariants: unknown invariant 'speed'"),
    (("mix: default,", "mix: default, rps: 3,"), "load: unknown key 'rps'"),
    (("recovery_within: 10s", "recovery_within: soon"), "expect.recovery_within: must be a duration like"),
    (("error_rate: 0.5", "error_rate: 2"), "timeline[2].behaviour.error_rate: input should be less than or "
                                           "equal to 1 (got 2)"),
    (("family: database", "family: database\nfamily: network"), "invalid YAML at line 4, column 1: duplicate "
                                                                "key 'family'"),
    (("load: {users", "load: {{users"), "(while parsing a flow mapping started at line 5)"),
    (("name: sample\n", ""), "name: required"),
])
def test_bad_file_gives_one_line_naming_file_and_field(tmp_path: Path, change: tuple[str, str],
                                                       expected: str) -> None:
    old, new = change
    assert old in GOOD
    message = error_of(GOOD.replace(old, new, 1), tmp_path)
    assert expected in message


def test_overlapping_faults_on_one_service_are_rejected(tmp_path: Path) -> None:
    text = GOOD.replace("  - {at: 40s", "  - {at: 6s, fault: pause, target: postgres, for: 1s}\n  - {at: 40s")
    assert "timeline[2]: overlaps timeline[1] on service:postgres" in error_of(text, tmp_path)


def test_allowed_errors_without_faults_must_say_they_hold_for_the_whole_run() -> None:
    base = "name: b\nfamily: load\nduration: 5s\nexpect: {errors_allowed: [RATE_LIMITED]"
    with pytest.raises(ScenarioError, match="set errors_allowed_during: run"):
        parse_scenario(base + "}")
    assert parse_scenario(base + ", errors_allowed_during: run}").expect.errors_allowed == ["RATE_LIMITED"]


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    assert "expected a mapping of scenario fields, got list" in error_of("- a\n- b\n", tmp_path)


# -- values -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "seconds"), [("500ms", 0.5), ("10s", 10.0), ("2m", 120.0), ("1.5h", 5400.0),
                                              (3, 3.0), (0.25, 0.25), (" 7 ", 7.0)])
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


def test_step_names_default_and_stay_unique() -> None:
    text = GOOD.replace("  - {at: 5s", "  - {at: 11s, fault: toxic, target: wallet_db, type: reset_peer, for: 1s}\n"
                                       "  - {at: 5s")
    names = [step.name for step in parse_scenario(text).timeline]
    assert names == ["toxic-wallet_db-reset_peer", "toxic-wallet_db-reset_peer-2", "kill-postgres",
                     "gateway-behaviour"]


def test_resolved_yaml_round_trips() -> None:
    scenario = parse_scenario(GOOD)
    assert parse_scenario(scenario.to_yaml()) == scenario


# -- scaling, overrides, schedule -----------------------------------------------------------------------------
def test_scaled_shrinks_every_time_but_not_recovery() -> None:
    scenario = parse_scenario(GOOD)
    half = scenario.scaled(0.5)
    assert half.duration_s == 30
    assert [(s.at_s, s.for_s, s.jitter_s) for s in half.timeline] == [(5, 10, 0), (2.5, 1, 1.5), (20, 0.25, 2.5)]
    assert half.expect.recovery_within_s == scenario.expect.recovery_within_s
    assert scenario.duration_s == 60, "scaled() must not modify the original"


def test_scaled_to_max_duration_leaves_short_scenarios_alone() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.scaled(max_duration="15s").duration_s == pytest.approx(15)
    assert scenario.scaled(max_duration=600) == scenario
    with pytest.raises(ValueError):
        scenario.scaled()


def test_whole_catalog_scaled_for_ci_stays_valid() -> None:
    for scenario in load_catalog(CATALOG):
        short = scenario.scaled(max_duration=8)
        assert short.duration_s <= 8
        assert all(p.end_s <= short.duration_s + 1e-6 for p in short.schedule())


def test_overrides() -> None:
    peak = load_scenario(CATALOG / "peak-hour-congestion.yaml")
    changed = peak.with_overrides(users=5, duration_s="30s", seed=42, processes=2)
    assert (changed.load.users, changed.duration_s, changed.seed, changed.load.processes) == (5, 30, 42, 2)
    assert [s.users for s in changed.load.stages] == [40, 5]
    assert changed.load.stages[0].at_s == pytest.approx(peak.load.stages[0].at_s * 2)
    assert peak.with_overrides() == peak


def test_schedule_is_deterministic_per_seed_and_within_jitter() -> None:
    scenario = parse_scenario(GOOD)
    first, again, other = scenario.schedule(1), scenario.schedule(1), scenario.schedule(2)
    assert first == again
    assert [p.start_s for p in first] != [p.start_s for p in other]
    by_name = {p.name: p for p in first}
    assert by_name["toxic-wallet_db-reset_peer"].start_s == 10  # no jitter: exact
    assert 5 <= by_name["kill-postgres"].start_s <= 8
    assert by_name["kill-postgres"].end_s == pytest.approx(by_name["kill-postgres"].start_s + 2)
    assert [p.start_s for p in first] == sorted(p.start_s for p in first)
    assert scenario.schedule() == scenario.schedule(scenario.seed)
