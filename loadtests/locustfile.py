"""walletchaos load: wallet users recording every operation into a per-process JSONL history.

Standalone:  locust -f loadtests/locustfile.py --host http://127.0.0.1:8080 [--headless -u 5 -r 5 -t 30s]
Harness:     walletchaos.load.run_locust(...) sets the env vars below.

Env: WALLETCHAOS_MIX (default | busy | peak | brute_force | intruder | readonly), WALLETCHAOS_SEED (int),
WALLETCHAOS_HISTORY_DIR (./history; each process writes history-<worker-id>.jsonl),
WALLETCHAOS_CLIENT_TIMEOUT_S (10), WALLETCHAOS_THINK_S ("lo,hi" seconds, overrides the mix),
WALLETCHAOS_STAGES (JSON [{"at": s, "users": n, "spawn_rate": r|null}], with WALLETCHAOS_USERS,
WALLETCHAOS_SPAWN_RATE, WALLETCHAOS_DURATION_S: a load shape for ramps and surges).

Only the classes of the selected mix are concrete here (Locust runs every non-abstract User it finds).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # helpers next to this file, also after a fork

from locust import LoadTestShape, events  # noqa: E402

import wc_support  # noqa: E402
import wc_users  # noqa: E402

MIX = wc_support.CONFIG.mix

if MIX in ("default", "busy"):  # busy: the same customer with a short think time (wc_support.THINK_BUSY)
    class WalletUser(wc_users.WalletBehaviour):
        abstract = False
elif MIX == "peak":
    class WalletUser(wc_users.PeakBehaviour):  # type: ignore[no-redef]
        abstract = False
elif MIX == "readonly":
    class ReadOnlyUser(wc_users.ReadOnlyBehaviour):
        abstract = False
elif MIX == "brute_force":
    class WalletUser(wc_users.WalletBehaviour):  # type: ignore[no-redef]
        abstract = False
        weight = 1

    class BruteForceUser(wc_users.BruteForceBehaviour):
        abstract = False
        weight = 1
        think_s = (0.01, 0.05)  # attackers hammer: >= 100 guesses of each kind in a short run
elif MIX == "intruder":
    class WalletUser(wc_users.WalletBehaviour):  # type: ignore[no-redef]
        abstract = False
        weight = 1  # 1 victim to 2 intruders

    class IntruderUser(wc_users.IntruderBehaviour):
        abstract = False
        weight = 2
        think_s = (0.01, 0.05)  # intruders hammer: >= 100 attempts of each attack kind in a short run


_STAGES = os.environ.get("WALLETCHAOS_STAGES")
if _STAGES:
    class StagedShape(LoadTestShape):
        """Initial users, then each stage's user count from its `at` on; stops at the duration."""

        abstract = False
        stages = sorted(json.loads(_STAGES), key=lambda s: s["at"])
        users = int(os.environ.get("WALLETCHAOS_USERS", "10"))
        spawn_rate = float(os.environ.get("WALLETCHAOS_SPAWN_RATE", "10"))
        duration_s = float(os.environ.get("WALLETCHAOS_DURATION_S", "60"))

        def tick(self) -> tuple[int, float] | None:
            t = self.get_run_time()
            if t >= self.duration_s:
                return None
            users, rate = self.users, self.spawn_rate
            for stage in self.stages:
                if t >= stage["at"]:
                    users, rate = stage["users"], stage.get("spawn_rate") or rate
            return users, rate


@events.quitting.add_listener
def _flag_user_code_errors(environment, **_kwargs: object) -> None:
    """The harness runs with --exit-code-on-error 0 (failed requests are expected under faults); an
    exception in user code is a harness bug and must still be visible: exit code 3."""
    runner = environment.runner
    if runner is not None and runner.exceptions and environment.process_exit_code is None:
        environment.process_exit_code = 3


@events.quit.add_listener
def _close_history(**_kwargs: object) -> None:
    wc_support.close_history()
