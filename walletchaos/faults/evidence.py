"""Evidence a lifecycle fault bit: the pid of the faulted service before injection and after healing,
recorded in the fault's events (checks/fault_efficacy.py compares them).

The Topology protocol has no pid accessor, so this asks what the two backends expose (process: the
ServiceProcess / EmbeddedPostgres `pid`; docker: the container's State.Pid) and answers None for
anything else: no pid is "unknown", never evidence either way.
"""

from __future__ import annotations

from typing import Any


def service_pid(topology: Any, service: str) -> int | None:
    try:
        container = getattr(topology, "container", None)
        if callable(container):
            c = container(service)
            c.reload()
            return int(c.attrs["State"].get("Pid") or 0) or None
        proc = getattr(topology, "pg" if service == "postgres" else service, None)
        pid = getattr(proc, "pid", None)
        return int(pid) if pid else None
    except Exception:  # noqa: BLE001 - a pid is evidence, never a reason for a fault to fail
        return None
