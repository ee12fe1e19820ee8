"""Toxiproxy control through toxiproxy-python, plus what that client lacks.

toxiproxy-python keeps the server address in class attributes (`APIConsumer.host/port`, one global
server per process) and calls `requests` without a timeout, so a hung Toxiproxy would hang the harness.
`ToxiproxyClient` binds the library to one server per call (under a lock) and routes its HTTP through a
shim that always sets a timeout and retries connection errors briefly. Errors become `ToxiproxyError`
with one readable line.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlparse

import requests
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed
from toxiproxy import api as _api
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.proxy import Proxy
from toxiproxy.server import Toxiproxy

_BIND_LOCK = threading.RLock()


class ToxiproxyError(RuntimeError):
    """A Toxiproxy API call failed; the message says which call and why."""


class _TimedRequests:
    """Stands in for the `requests` module inside toxiproxy.api: same calls, with a timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.session = requests.Session()

    @retry(retry=retry_if_exception_type(requests.ConnectionError), stop=stop_after_attempt(3),
           wait=wait_fixed(0.2), reraise=True)
    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._call("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._call("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self._call("DELETE", url, **kwargs)


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str
    upstream: str
    enabled: bool

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class ToxiproxyClient:
    """One Toxiproxy server, addressed by URL (e.g. http://127.0.0.1:8474)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parsed = urlparse(url)
        if not parsed.hostname or not parsed.port:
            raise ToxiproxyError(f"toxiproxy url must look like http://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self.host, self.port = parsed.hostname, parsed.port
        self._http = _TimedRequests(timeout)
        self._server = Toxiproxy()

    @contextmanager
    def _bound(self, what: str) -> Iterator[None]:
        with _BIND_LOCK:
            saved = (_api.APIConsumer.host, _api.APIConsumer.port, _api.requests)
            _api.APIConsumer.host, _api.APIConsumer.port = self.host, self.port
            _api.requests = self._http
            try:
                yield
            except (ProxyExists, NotFound, InvalidToxic) as exc:
                raise ToxiproxyError(f"toxiproxy {what}: {type(exc).__name__}: {_text(exc)}") from exc
            except requests.RequestException as exc:
                raise ToxiproxyError(f"toxiproxy {what}: {type(exc).__name__} talking to {self.url}") from exc
            finally:
                _api.APIConsumer.host, _api.APIConsumer.port, _api.requests = saved

    # -- server ------------------------------------------------------------------------------
    def is_up(self) -> bool:
        try:
            return self._http.session.get(f"{self.url}/version", timeout=1).ok
        except requests.RequestException:
            return False

    def version(self) -> str:
        with self._bound("version"):
            return _api.APIConsumer.get("/version").text.strip()

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic (clears stale faults of an earlier run)."""
        with self._bound("reset"):
            self._server.reset()

    # -- proxies -----------------------------------------------------------------------------
    def proxies(self) -> dict[str, ProxyInfo]:
        with self._bound("list proxies"):
            raw = _api.APIConsumer.get("/proxies").json()
        return {n: ProxyInfo(n, v["listen"], v["upstream"], v["enabled"]) for n, v in raw.items()}

    def proxy(self, name: str) -> ProxyInfo:
        proxies = self.proxies()
        if name not in proxies:
            raise ToxiproxyError(f"toxiproxy: no proxy named {name!r} (have: {', '.join(sorted(proxies))})")
        return proxies[name]

    def create_proxy(self, name: str, listen: str, upstream: str) -> ProxyInfo:
        """Create (or replace, if it differs) a proxy; returns it with its actual listen address."""
        with self._bound(f"create proxy {name}"):
            self._server.populate([{"name": name, "listen": listen, "upstream": upstream}])
        return self.proxy(name)

    def delete_all(self) -> None:
        with self._bound("delete proxies"):
            self._server.destroy_all()

    def _proxy_obj(self, name: str) -> Proxy:
        info = self.proxy(name)
        return Proxy(name=info.name, upstream=info.upstream, enabled=info.enabled, listen=info.listen)

    def disable(self, name: str) -> None:
        """Take the proxy down: drops live connections and refuses new ones."""
        proxy = self._proxy_obj(name)
        with self._bound(f"disable {name}"):
            proxy.disable()

    def enable(self, name: str) -> None:
        proxy = self._proxy_obj(name)
        with self._bound(f"enable {name}"):
            proxy.enable()

    # -- toxics ------------------------------------------------------------------------------
    def add_toxic(self, proxy: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
                  attributes: dict[str, Any] | None = None, name: str | None = None) -> str:
        name = name or f"{type}_{stream}"
        obj = self._proxy_obj(proxy)
        with self._bound(f"add toxic {name} to {proxy}"):
            obj.add_toxic(type=type, stream=stream, toxicity=toxicity, attributes=attributes or {}, name=name)
        return name

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic; a toxic that is already gone is not an error (stop must be idempotent)."""
        obj = self._proxy_obj(proxy)
        try:
            with self._bound(f"remove toxic {name} from {proxy}"):
                obj.destroy_toxic(name)
        except ToxiproxyError as exc:
            if "NotFound" not in str(exc):
                raise

    def toxics(self, proxy: str) -> dict[str, dict[str, Any]]:
        with self._bound(f"list toxics of {proxy}"):
            return {t["name"]: t for t in _api.APIConsumer.get(f"/proxies/{proxy}/toxics").json()}


def _text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        arg = arg.decode(errors="replace")
    return str(arg).strip()[:300]
