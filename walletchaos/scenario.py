"""The scenario language: pydantic models of a scenario YAML file, loading and validation.

A scenario is data, not code, so that a support engineer can read and write one; therefore every
mistake in a file must come back as ONE readable line naming the file and the field
(`scenarios/x.yaml: timeline[0].for: must be a duration like '10s'`), never a traceback.

Times in a scenario are relative to the start of the load. Durations are "500ms", "10s", "2m", "1h" or
plain numbers (seconds); internally every duration is a float of seconds.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from walletchaos.checks import CHECKS
from walletchaos.topology.base import PROXIES, SERVICES


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid; str() is one line: `<file>: <field>: <problem>`."""


# -- vocabularies fixed elsewhere (CONTRACT.md error catalog, internals.md check registry) ------------
ERROR_CODES: tuple[str, ...] = (
    "VALIDATION_ERROR", "UNAUTHENTICATED", "INVALID_CREDENTIALS", "ACCOUNT_LOCKED", "INVALID_PIN",
    "ACCOUNT_FROZEN", "ACCOUNT_NOT_FOUND", "TRANSACTION_NOT_FOUND", "USERNAME_TAKEN", "INSUFFICIENT_FUNDS",
    "IDEMPOTENCY_KEY_MISSING", "IDEMPOTENCY_KEY_REUSED", "REQUEST_IN_PROGRESS", "RATE_LIMITED",
    "MAINTENANCE", "DATABASE_UNAVAILABLE", "GATEWAY_ERROR", "GATEWAY_TIMEOUT", "INTERNAL_ERROR",
)
INVARIANTS: tuple[str, ...] = tuple(CHECKS)  # the checker registry is the one list of invariant names
Family = Literal["baseline", "server", "network", "database", "gateway", "operations", "load", "combined"]
FAMILIES: tuple[str, ...] = get_args(Family)

# toxic type -> (required attributes, optional attributes); all are non-negative integers as Toxiproxy
# takes them (latency/jitter/delay/timeout in ms, except slicer.delay in µs; rate in KB/s; sizes in bytes)
TOXIC_ATTRIBUTES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "latency": (frozenset({"latency"}), frozenset({"jitter"})),
    "bandwidth": (frozenset({"rate"}), frozenset()),
    "slow_close": (frozenset({"delay"}), frozenset()),
    "timeout": (frozenset(), frozenset({"timeout"})),
    "reset_peer": (frozenset(), frozenset({"timeout"})),
    "slicer": (frozenset({"average_size"}), frozenset({"size_variation", "delay"})),
    "limit_data": (frozenset({"bytes"}), frozenset()),
}
ToxicType = Literal["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"]

def _err(kind: str, template: str, values: dict[str, Any] | None = None) -> PydanticCustomError:
    """A validation error with a finished message (pydantic's own templating knows no `!r`)."""
    return PydanticCustomError(kind, template.format(**values) if values else template)


# -- durations ------------------------------------------------------------------------------------------
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """'500ms' | '10s' | '2m' | '1h' | number of seconds -> seconds (float, >= 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.fullmatch(value.strip())
        if match:
            return float(match[1]) * _UNIT_SECONDS[match[2] or "s"]
    raise _err("duration", "must be a duration like '10s' (got {got!r})", {"got": value})


def format_duration(seconds: float) -> str:
    """Inverse of parse_duration for messages: 0.5 -> '500ms', 10.0 -> '10s', 2.25 -> '2.25s'."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{round(seconds, 3):g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]


# -- base model: unknown keys are errors that say which keys exist ----------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = {f.alias or n for n, f in cls.model_fields.items()}
            unknown = [k for k in data if k not in allowed and k not in cls.model_fields]
            if unknown:
                raise _err("unknown_key", "unknown key {key!r} (allowed: {allowed})",
                                          {"key": unknown[0], "allowed": ", ".join(sorted(allowed))})
        return data


def _check_target(value: str, allowed: tuple[str, ...] | list[str], what: str, fault: str) -> str:
    if value in allowed:
        return value
    other = "service" if value in SERVICES else "proxy" if value in PROXIES else None
    if other:
        raise _err("target", "{value!r} is a {other}; {fault} faults target a {what}: {allowed}",
                                  {"value": value, "other": other, "fault": fault, "what": what,
                                   "allowed": ", ".join(allowed)})
    raise _err("target", "unknown {what} {value!r} (one of: {allowed})",
                              {"what": what, "value": value, "allowed": ", ".join(allowed)})


# -- timeline steps (discriminated union on `fault`) ------------------------------------------------------
class _Step(_Strict):
    """What every timeline step has: when it starts, how long it lasts, optional seeded jitter."""

    at_s: Duration = Field(alias="at")
    for_s: Annotated[Duration, Field(gt=0)] = Field(alias="for")
    jitter_s: Duration = Field(0.0, alias="jitter")
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] | None = None

    def latest_end(self) -> float:
        return self.at_s + self.jitter_s + self.for_s

    def exclusive_key(self) -> str | None:
        """Steps with the same key must not overlap in time (their stop would undo each other)."""
        return None

    def default_name(self) -> str:
        return f"{self.fault}-{self.target}"  # type: ignore[attr-defined]


class ToxicStep(_Step):
    """Any Toxiproxy toxic on one proxy (latency, resets, blackhole, bandwidth, slicing...)."""

    fault: Literal["toxic"]
    target: str
    type: ToxicType
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: Annotated[float, Field(ge=0, le=1)] = 1.0
    attributes: dict[str, int] = Field(default_factory=dict)

    @field_validator("target")
    @classmethod
    def _proxy(cls, v: str) -> str:
        return _check_target(v, list(PROXIES), "proxy", "toxic")

    @field_validator("attributes")
    @classmethod
    def _attributes_fit_type(cls, v: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        toxic = info.data.get("type")
        if toxic is None:  # the type itself is invalid; that error is reported instead
            return v
        required, optional = TOXIC_ATTRIBUTES[toxic]
        for key, value in v.items():
            if key not in required | optional:
                raise _err(
                    "attribute", "{key!r} is not an attribute of a {toxic} toxic (allowed: {allowed})",
                    {"key": key, "toxic": toxic, "allowed": ", ".join(sorted(required | optional)) or "none"})
            if value < 0:
                raise _err("attribute", "{key!r} must be >= 0", {"key": key})
        missing = sorted(required - v.keys())
        if missing:
            raise _err("attribute", "a {toxic} toxic needs {missing!r}",
                                      {"toxic": toxic, "missing": missing[0]})
        return v

    def default_name(self) -> str:
        return f"toxic-{self.target}-{self.type}"


class ProxyDownStep(_Step):
    """Disable a proxy: the dependency is unreachable (network partition)."""

    fault: Literal["proxy_down"]
    target: str

    @field_validator("target")
    @classmethod
    def _proxy(cls, v: str) -> str:
        return _check_target(v, list(PROXIES), "proxy", "proxy_down")

    def exclusive_key(self) -> str:
        return f"proxy:{self.target}"


class _LifecycleStep(_Step):
    target: str

    @field_validator("target")
    @classmethod
    def _service(cls, v: str) -> str:
        return _check_target(v, SERVICES, "service", "process lifecycle")

    def exclusive_key(self) -> str:
        return f"service:{self.target}"


class KillStep(_LifecycleStep):
    """SIGKILL the service, restart it after `for` (for postgres: crash + crash recovery)."""

    fault: Literal["kill"]


class PauseStep(_LifecycleStep):
    """SIGSTOP the service (a hung server: sockets open, nothing answers), SIGCONT after `for`."""

    fault: Literal["pause"]


class TerminateStep(_LifecycleStep):
    """Graceful SIGTERM (deploy/restart), start again after `for`."""

    fault: Literal["terminate"]


class GatewayBehaviour(_Strict):
    """Body of PUT /control/behaviour on the mock gateway (internals.md); unset fields default to 0."""

    error_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    decline_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    delay_ms: Annotated[int, Field(ge=0)] = 0
    apply_then_drop_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    apply_then_hang_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    hang_s: Annotated[float, Field(ge=0)] | None = None
    seed: int | None = None


class GatewayStep(_Step):
    """Misbehaving bank/3rd-party gateway: errors, declines, slowness, apply-then-drop/hang."""

    fault: Literal["gateway"]
    target: Literal["gateway"] = "gateway"
    behaviour: GatewayBehaviour

    def exclusive_key(self) -> str:
        return "gateway-behaviour"

    def default_name(self) -> str:
        return "gateway-behaviour"


class MaintenanceStep(_Step):
    """Wallet maintenance mode (503 MAINTENANCE with Retry-After); retry_after_s defaults to `for`."""

    fault: Literal["maintenance"]
    target: Literal["wallet"] = "wallet"
    retry_after_s: Annotated[int, Field(ge=0)] | None = None

    def exclusive_key(self) -> str:
        return "maintenance"

    def default_name(self) -> str:
        return "maintenance"

    def retry_after(self) -> int:
        return self.retry_after_s if self.retry_after_s is not None else max(1, math.ceil(self.for_s))


class FreezeStep(_Step):
    """Risk control freezes `count` random existing accounts; unfrozen at the end."""

    fault: Literal["freeze"]
    target: Literal["wallet"] = "wallet"
    count: Annotated[int, Field(ge=1)] = 3

    def default_name(self) -> str:
        return "freeze-accounts"


FaultStep = Annotated[
    Union[ToxicStep, ProxyDownStep, KillStep, PauseStep, TerminateStep, GatewayStep, MaintenanceStep,
          FreezeStep],
    Field(discriminator="fault"),
]
FAULT_KINDS: tuple[str, ...] = ("toxic", "proxy_down", "kill", "pause", "terminate", "gateway",
                                "maintenance", "freeze")


# -- load, expectations, scenario ---------------------------------------------------------------------------
class Stage(_Strict):
    """From `at` on, the load runs `users` users (Locust LoadTestShape); used for ramps and surges."""

    at_s: Duration = Field(alias="at")
    users: Annotated[int, Field(ge=0)]
    spawn_rate: Annotated[float, Field(gt=0)] | None = None


class Load(_Strict):
    users: Annotated[int, Field(ge=1)] = 10
    spawn_rate: Annotated[float, Field(gt=0)] = 10.0
    mix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = "default"
    processes: Annotated[int, Field(ge=1, le=64)] = 1
    stages: list[Stage] = Field(default_factory=list)
    # think time [lo, hi] seconds between a user's ops (default: the mix's); short think = more writes/s
    think: list[Annotated[float, Field(ge=0, le=60)]] | None = None

    @field_validator("think")
    @classmethod
    def _think_range(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (len(v) != 2 or v[0] > v[1]):
            raise _err("think", "load.think must be [lo, hi] seconds with lo <= hi, not {v}", {"v": v})
        return v

    @field_validator("stages")
    @classmethod
    def _ascending(cls, v: list[Stage]) -> list[Stage]:
        for i in range(1, len(v)):
            if v[i].at_s <= v[i - 1].at_s:
                raise _err("stages", "stage {i} starts at {at}, not after stage {j}",
                                          {"i": i, "at": format_duration(v[i].at_s), "j": i - 1})
        return v


class Expect(_Strict):
    invariants: Literal["all"] | list[str] = "all"
    # error codes tolerated while a fault is active (and in the heal phase), or for the whole run
    # when errors_allowed_during is "run" (load-shaped scenarios: overload, brute force, intruders)
    errors_allowed: list[str] = Field(default_factory=list)
    errors_allowed_during: Literal["fault", "run"] = "fault"
    recovery_within_s: Duration = Field(10.0, alias="recovery_within")

    @field_validator("invariants", mode="before")
    @classmethod
    def _known_invariants(cls, v: Any) -> Any:
        if isinstance(v, list):
            for name in v:
                if name not in INVARIANTS:
                    raise _err("invariant", "unknown invariant {name!r} (one of: all, {known})",
                                              {"name": name, "known": ", ".join(INVARIANTS)})
        elif v != "all":
            raise _err("invariant", "must be 'all' or a list of invariant names (got {v!r})",
                                      {"v": v})
        return v

    @field_validator("errors_allowed")
    @classmethod
    def _catalog_codes(cls, v: list[str]) -> list[str]:
        for code in v:
            if code == "INTERNAL_ERROR":
                raise _err("code", "INTERNAL_ERROR can never be allowed (it is a bug by contract)")
            if code not in ERROR_CODES:
                raise _err("code", "unknown error code {code!r} (see the catalog in CONTRACT.md)",
                                          {"code": code})
        return v

    # regexes of server log lines (wallet, gateway, PostgreSQL) expected at ERROR level during this
    # scenario's faults, on top of the defaults per fault kind (walletchaos.server_logs.DEFAULT_ALLOWED)
    logs_allowed: list[str] = Field(default_factory=list)

    @field_validator("logs_allowed")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _err("regex", "{pattern!r} is not a valid regular expression: {exc}",
                           {"pattern": pattern, "exc": exc}) from None
        return v

    def invariant_names(self) -> list[str]:
        return list(INVARIANTS) if self.invariants == "all" else list(self.invariants)


@dataclass(frozen=True)
class ScheduledFault:
    """One timeline step with its actual start (jitter drawn) and end, seconds from load start."""

    name: str
    step: Any  # one of the FaultStep models
    start_s: float
    end_s: float


class Scenario(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    description: str = ""
    family: Family
    anomaly: str = ""  # the support-article anomaly this scenario reproduces
    load: Load = Field(default_factory=Load)
    duration_s: Annotated[Duration, Field(gt=0)] = Field(20.0, alias="duration")
    seed: int = 0
    timeline: list[FaultStep] = Field(default_factory=list)
    expect: Expect = Field(default_factory=Expect)
    # the invariants that judge this scenario's anomaly (README catalog column "judged by")
    judged_by: list[str] = Field(default_factory=list)
    # extra environment of the wallet for this scenario (e.g. a short WALLET_LOCKOUT_S); the CLI's own
    # wallet env (planted bugs) is merged over it
    wallet_env: dict[str, str] = Field(default_factory=dict)

    @field_validator("judged_by")
    @classmethod
    def _known_judges(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in INVARIANTS:
                raise _err("invariant", "unknown invariant {name!r} (one of: {known})",
                           {"name": name, "known": ", ".join(INVARIANTS)})
        return v

    @field_validator("wallet_env", mode="before")
    @classmethod
    def _env_strings(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise _err("wallet_env", "must be a mapping of NAME: value")
        out = {}
        for key, value in v.items():
            if not isinstance(key, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
                raise _err("wallet_env", "{key!r} is not an environment variable name (A-Z, 0-9, _)",
                           {"key": key})
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise _err("wallet_env", "{key}: must be a string or a number", {"key": key})
            out[key] = str(value)
        return out

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        self._name_steps()
        for i, step in enumerate(self.timeline):
            if step.latest_end() > self.duration_s + 1e-6:
                jitter = f" + jitter {format_duration(step.jitter_s)}" if step.jitter_s else ""
                raise _err(
                    "timeline", "timeline[{i}].for: the fault may end at {end} (at {at}{jitter} + for {for_}), "
                    "after the load ends at {duration}",
                    {"i": i, "end": format_duration(step.latest_end()), "at": format_duration(step.at_s),
                     "jitter": jitter, "for_": format_duration(step.for_s),
                     "duration": format_duration(self.duration_s)})
        self._check_overlaps()
        for i, stage in enumerate(self.load.stages):
            if stage.at_s >= self.duration_s:
                raise _err("stages", "load.stages[{i}].at: starts at {at}, after the load ends at "
                                          "{duration}", {"i": i, "at": format_duration(stage.at_s),
                                                         "duration": format_duration(self.duration_s)})
        if self.expect.errors_allowed and self.expect.errors_allowed_during == "fault" and not self.timeline:
            raise _err("expect", "expect.errors_allowed: there is no fault in the timeline; "
                                      "set errors_allowed_during: run to allow them for the whole run")
        return self

    def _name_steps(self) -> None:
        seen: set[str] = set()
        for i, step in enumerate(self.timeline):
            if step.name is not None:
                if step.name in seen:
                    raise _err("name", "timeline[{i}].name: duplicate step name {name!r}",
                                              {"i": i, "name": step.name})
                seen.add(step.name)
        for step in self.timeline:
            if step.name is None:
                base, n = step.default_name(), 1
                step.name = base
                while step.name in seen:
                    n += 1
                    step.name = f"{base}-{n}"
                seen.add(step.name)

    def _check_overlaps(self) -> None:
        for i, a in enumerate(self.timeline):
            for j in range(i + 1, len(self.timeline)):
                b = self.timeline[j]
                key = a.exclusive_key()
                if key and key == b.exclusive_key() and a.at_s < b.latest_end() and b.at_s < a.latest_end():
                    raise _err(
                        "overlap", "timeline[{j}]: overlaps timeline[{i}] on {key} (their windows, jitter "
                        "included, must not overlap)", {"i": i, "j": j, "key": key})

    # -- derived scenarios --------------------------------------------------------------------------------
    def scaled(self, duration_factor: float | None = None, *, max_duration: float | None = None) -> "Scenario":
        """A copy with every time (duration, at, for, jitter, stage starts) multiplied by a factor.

        `max_duration` shrinks only scenarios longer than it (CI / `make chaos`). recovery_within is a
        property of the system, not of the scenario length, so it is kept.
        """
        if (duration_factor is None) == (max_duration is None):
            raise ValueError("give exactly one of duration_factor or max_duration")
        if max_duration is not None:
            duration_factor = min(1.0, parse_duration(max_duration) / self.duration_s)
        if not duration_factor or duration_factor <= 0:
            raise ValueError("duration_factor must be > 0")
        data = self.to_dict()
        f = duration_factor
        data["duration"] *= f
        for step in data["timeline"]:
            step["at"] *= f
            step["for"] *= f
            step["jitter"] *= f
        for stage in data["load"]["stages"]:
            stage["at"] *= f
        return Scenario.model_validate(data)

    def with_overrides(self, *, users: int | None = None, duration_s: float | str | None = None,
                       seed: int | None = None, processes: int | None = None) -> "Scenario":
        """CLI overrides. `duration_s` rescales the timeline so faults keep their relative place; `users`
        scales stage user counts by the same ratio as the base user count."""
        result = self if duration_s is None else self.scaled(parse_duration(duration_s) / self.duration_s)
        data = result.to_dict()
        if processes is not None:
            data["load"]["processes"] = processes
        if users is not None:
            ratio = users / self.load.users
            data["load"]["users"] = users
            for stage in data["load"]["stages"]:
                stage["users"] = max(0, round(stage["users"] * ratio))
        if seed is not None:
            data["seed"] = seed
        return Scenario.model_validate(data)

    def schedule(self, seed: int | None = None) -> list[ScheduledFault]:
        """The timeline with jitter drawn from random.Random(seed or self.seed): same seed, same schedule.

        A draw is made only for steps that have jitter, so adding a fixed step keeps the others' draws.
        """
        rng = random.Random(self.seed if seed is None else seed)
        out = []
        for step in self.timeline:
            start = step.at_s + (rng.uniform(0, step.jitter_s) if step.jitter_s else 0.0)
            out.append(ScheduledFault(step.name, step, start, start + step.for_s))
        return sorted(out, key=lambda s: s.start_s)

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as YAML keys (names filled in, durations in seconds), loadable again."""
        return self.model_dump(by_alias=True, exclude_none=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# -- loading --------------------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file; any problem raises ScenarioError (one line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_scenario(text, source=str(path))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text; `source` names it in error messages."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark:  # e.g. an unclosed bracket: say where the construct began
            problem += f" ({context} started at line {context_mark.line + 1})"
        raise ScenarioError(f"{source}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping of scenario fields, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {format_validation_error(exc)}") from None


def load_catalog(directory: str | Path) -> list[Scenario]:
    """Every *.yaml / *.yml in a directory, sorted by file name; names must be unique."""
    directory = Path(directory)
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise ScenarioError(f"{directory}: no scenario files (*.yaml)")
    scenarios: list[Scenario] = []
    where: dict[str, Path] = {}
    for file in files:
        scenario = load_scenario(file)
        if scenario.name in where:
            raise ScenarioError(f"{file}: name: {scenario.name!r} is already used by {where[scenario.name]}")
        where[scenario.name] = file
        scenarios.append(scenario)
    return scenarios


def format_validation_error(exc: ValidationError) -> str:
    """First pydantic error as `field.path: problem`, plus a count of the others."""
    errors = exc.errors()
    first = _format_one(errors[0])
    more = len(errors) - 1
    return first + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _format_one(err: Any) -> str:
    loc = _format_loc(err["loc"])
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "union_tag_invalid":
        msg = f"unknown fault {ctx.get('tag')!r} (one of: {', '.join(FAULT_KINDS)})"
        loc += ".fault"
    elif kind == "union_tag_not_found":
        msg = f"missing 'fault' (one of: {', '.join(FAULT_KINDS)})"
    elif kind == "missing":
        msg = "required"
    elif kind == "extra_forbidden":
        msg = "unknown key"
    else:
        msg = err["msg"]
        msg = msg[0].lower() + msg[1:] if msg[:1].isupper() and not msg[1:2].isupper() else msg
        value = err.get("input")
        if kind not in {"duration", "target", "unknown_key", "attribute", "code", "invariant", "stages",
                        "timeline", "overlap", "name", "expect", "regex", "wallet_env"} and isinstance(value, (str, int, float)):
            msg += f" (got {value!r})"
    return f"{loc}: {msg}" if loc else msg


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i > 0 and isinstance(loc[i - 1], int) and part in FAULT_KINDS:
            continue  # the discriminated-union tag pydantic inserts: not a field the user wrote
        else:
            out += f".{part}" if out else str(part)
    return out
