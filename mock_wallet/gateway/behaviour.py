"""Scriptable misbehaviour of the gateway (control API), for faults a TCP proxy cannot produce."""

from __future__ import annotations

import random
from typing import Annotated

from pydantic import BaseModel, Field

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class Behaviour(BaseModel):
    """PUT replaces the whole behaviour; missing fields fall back to 'well behaved'."""

    error_rate: Rate = 0.0  # 5xx before applying anything (definite failure)
    decline_rate: Rate = 0.0  # 200 status=declined, recorded (definite)
    delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 0  # slow processing before applying
    apply_then_drop_rate: Rate = 0.0  # apply, then close the connection without any response
    apply_then_hang_rate: Rate = 0.0  # apply, then hold the response for hang_s
    hang_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 30.0
    seed: int | None = None


class Dice:
    """The random source for the behaviour; seeded for reproducible scenarios."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self._rng = random.Random(behaviour.seed)

    def roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate
