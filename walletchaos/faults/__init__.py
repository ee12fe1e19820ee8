"""The nemesis: fault injectors built from scenario timeline steps, and the runner that plays them."""

from walletchaos.faults.base import Fault, FaultContext, event
from walletchaos.faults.kinds import (FreezeFault, GatewayFault, KillFault, MaintenanceFault, PauseFault,
                                      ProxyDownFault, TerminateFault, ToxicFault, build_fault, clear_stale)
from walletchaos.faults.nemesis import Nemesis

__all__ = ["Fault", "FaultContext", "FreezeFault", "GatewayFault", "KillFault", "MaintenanceFault", "Nemesis",
           "PauseFault", "ProxyDownFault", "TerminateFault", "ToxicFault", "build_fault", "clear_stale", "event"]
