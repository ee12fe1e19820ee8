"""Target files: which wallet the harness tests, how to start it, and which adapter speaks its API.

A target is a small YAML file (`targets/mock-wallet.yaml` is the built-in default)::

    name: mock-wallet
    wallet:
      command: [python, -m, mock_wallet.serve, wallet, --host, "{host}", --port, "{port}"]
      env: {DATABASE_URL: "{database_url}", GATEWAY_URL: "{gateway_url}", WALLET_ADMIN_TOKEN: "{admin_token}"}
      ready: /readyz
    adapter: contract

`wallet` holds exactly one way to reach the wallet: `command` (the process backend starts it; a
container backend uses `image` instead, so a target may carry both) or `url` (a wallet that is already
running: the harness cannot start, stop or rewire it). The harness still provides PostgreSQL, the mock
payment gateway and Toxiproxy; the placeholders below are filled with the PROXIED addresses, so every
fault (toxics, partitions, kill -9, SIGSTOP, DB crash, gateway misbehaviour) reaches the wallet.

A mistake (unknown key, unknown placeholder, wrong type) is one `TargetError` line naming the file and
the field.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TARGET = REPO / "targets" / "mock-wallet.yaml"
TARGET_ENV = "WALLETCHAOS_TARGET"  # the default target file when none is named (pytest plugin, `up`, bench)
ADMIN_TOKEN_ENV = "WALLETCHAOS_ADMIN_TOKEN"  # url mode: the running wallet's admin token, if not in the file

# Every placeholder a target may use, with what the harness puts there (README "Testing your own wallet").
PLACEHOLDERS: dict[str, str] = {
    "host": "the address the wallet must listen on (127.0.0.1; 0.0.0.0 in a container)",
    "port": "the port the wallet must listen on (Toxiproxy's wallet_api proxy forwards to it)",
    "database_url": "PostgreSQL URL through the wallet_db proxy (postgresql://USER@HOST:PORT/DB)",
    "db_host": "PostgreSQL host, through the wallet_db proxy",
    "db_port": "PostgreSQL port, through the wallet_db proxy",
    "db_user": "PostgreSQL user (no password on the process backend: trust auth on loopback)",
    "db_password": "PostgreSQL password (empty on the process backend)",
    "db_name": "PostgreSQL database name",
    "gateway_url": "the mock payment gateway, through the gateway proxy (http://HOST:PORT)",
    "admin_token": "the bearer token the wallet must accept on /admin/* (fresh per run)",
    "data_dir": "an empty directory of this run the wallet may write to",
    "log_path": "the file the wallet's stdout/stderr go to (logs/wallet.log of the run)",
}
# Fields whose strings may carry placeholders (url/ready are literal: nothing is known before start).
TEMPLATED = ("command", "env", "args")


class TargetError(ValueError):
    """A target file is wrong; the message is one line naming the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WalletSpec(_Model):
    command: list[str] | None = None       # process backend: argv, placeholders filled, argv[0] on PATH
    image: str | None = None               # docker backend: the container image
    args: list[str] | None = None          # docker backend: the container's command (default: the image's)
    url: str | None = None                 # a wallet already running (url mode)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None                 # where the command runs (relative to this file); default: walletchaos's cwd
    ready: str = "/readyz"                 # polled until 200
    ready_timeout_s: float = Field(60.0, gt=0)
    admin_token: str | None = None         # url mode only: the running wallet's admin token

    @field_validator("command")
    @classmethod
    def _non_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("must name a program")
        return v

    @field_validator("ready")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"must be a path starting with / (got {v!r})")
        return v

    @field_validator("url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL (got {v!r})")
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _one_way(self) -> "WalletSpec":
        if self.url is not None and (self.command or self.image):
            raise ValueError("url cannot be combined with command or image (url: a wallet already running)")
        if self.url is None and not self.command and not self.image:
            raise ValueError("needs one of command (process backend), image (docker backend) or url")
        if self.admin_token is not None and self.url is None:
            raise ValueError("admin_token is for url mode only (a started wallet gets {admin_token})")
        return self


class Target(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    wallet: WalletSpec
    adapter: str = "contract"              # 'contract' (CONTRACT.md) or 'module:Class'
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("adapter")
    @classmethod
    def _adapter(cls, v: str) -> str:
        if v != "contract" and (v.count(":") != 1 or not all(v.split(":"))):
            raise ValueError(f"must be 'contract' or 'module:Class' (got {v!r})")
        return v

    @property
    def mode(self) -> str:
        """'url' for a wallet that is already running, else 'managed' (the harness starts it)."""
        return "url" if self.wallet.url else "managed"

    def admin_token(self) -> str | None:
        """url mode: the running wallet's admin token (file, else $WALLETCHAOS_ADMIN_TOKEN)."""
        return self.wallet.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None

    def render(self, values: dict[str, str]) -> "RenderedWallet":
        """The command/args/env with placeholders filled (values: every key of PLACEHOLDERS)."""
        missing = set(PLACEHOLDERS) - set(values)
        assert not missing, f"render() needs every placeholder, missing {sorted(missing)}"
        w = self.wallet
        fill = lambda s: s.format_map(values)  # noqa: E731 - checked on load: only known names
        return RenderedWallet(
            command=[fill(a) for a in w.command] if w.command else None,
            args=[fill(a) for a in w.args] if w.args else None,
            env={k: fill(v) for k, v in w.env.items()},
        )

    def workdir(self) -> Path | None:
        """The command's working directory: `wallet.cwd` (relative to the target file's directory), else
        None: the directory walletchaos runs in, so relative paths in `command` are relative to it."""
        if self.wallet.cwd is None:
            return None
        base = self.path.parent if self.path is not None else Path.cwd()
        return (base / self.wallet.cwd).resolve()

    def describe(self) -> str:
        w = self.wallet
        how = f"url {w.url}" if w.url else (" ".join(w.command) if w.command else f"image {w.image}")
        return f"{self.name} ({how}; adapter {self.adapter})"


@dataclass(frozen=True)
class RenderedWallet:
    command: list[str] | None
    args: list[str] | None
    env: dict[str, str]


def _placeholders(text: str) -> list[str]:
    """Placeholder names in a str.format template ('{{' and '}}' are literal braces)."""
    try:
        return [name for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:  # a lone '{' or '}'
        raise ValueError(f"{exc} (write {{{{ or }}}} for a literal brace)") from None


def _check_placeholders(raw: dict[str, Any]) -> str | None:
    """The first unknown/malformed placeholder as 'field: problem', or None."""
    wallet = raw.get("wallet") if isinstance(raw.get("wallet"), dict) else {}
    for key in TEMPLATED:
        value = wallet.get(key)
        items: list[tuple[str, Any]]
        if isinstance(value, list):
            items = [(f"wallet.{key}[{i}]", v) for i, v in enumerate(value)]
        elif isinstance(value, dict):
            items = [(f"wallet.{key}.{k}", v) for k, v in value.items()]
        else:
            continue
        for field, text in items:
            if not isinstance(text, str):
                continue  # a type error: pydantic reports it
            try:
                names = _placeholders(text)
            except ValueError as exc:
                return f"{field}: {exc}"
            for name in names:
                if name not in PLACEHOLDERS:
                    return f"{field}: unknown placeholder {{{name}}} (known: " \
                           f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
    return None


def _stringify_env(raw: dict[str, Any]) -> None:
    """YAML turns `PORT: 8080` into an int: env values are strings, so accept scalars as strings."""
    wallet = raw.get("wallet")
    if isinstance(wallet, dict) and isinstance(wallet.get("env"), dict):
        wallet["env"] = {str(k): (str(v).lower() if isinstance(v, bool) else str(v))
                         if isinstance(v, (int, float, bool)) else v for k, v in wallet["env"].items()}


def load_target(path: Path | str | None = None) -> Target:
    """Load and validate a target file (default: $WALLETCHAOS_TARGET, else targets/mock-wallet.yaml)."""
    from walletchaos.scenario import format_validation_error

    path = Path(path or os.environ.get(TARGET_ENV) or DEFAULT_TARGET)
    rel = os.path.relpath(path)
    shown = rel if not rel.startswith("..") else str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TargetError(f"{shown}: no such target file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"{shown}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise TargetError(f"{shown}:{where} not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(raw, dict):
        raise TargetError(f"{shown}: a target is a mapping with name, wallet and adapter")
    _stringify_env(raw)
    problem = _check_placeholders(raw)
    if problem:
        raise TargetError(f"{shown}: {problem}")
    if "path" in raw:
        raise TargetError(f"{shown}: path: unknown key")
    try:
        return Target.model_validate({**raw, "path": path.resolve()})
    except ValidationError as exc:
        raise TargetError(f"{shown}: {format_validation_error(exc).replace('value error, ', '')}") from None
