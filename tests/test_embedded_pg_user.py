"""The PostgreSQL system user is created once, never raced (a fresh machine's first `make chaos`).

Regression: two stacks started side by side both ran `useradd` for the same user; one initdb then
failed with "could not look up effective user ID 1001: user does not exist". Here four clusters start
at the same moment under a user name that does not exist yet, from four processes, and all must come up.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

START_ONE = """
import sys, time
from pathlib import Path
from mock_wallet.embedded_pg import EmbeddedPostgres
start_at = float(sys.argv[2])
while time.time() < start_at:   # line the four processes up on one instant
    time.sleep(0.001)
pg = EmbeddedPostgres(Path(sys.argv[1]))
pg.start()
try:
    print(pg.port, flush=True)
finally:
    pg.destroy()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as a separate system user")
def test_four_clusters_started_side_by_side_create_the_user_once(tmp_path: Path) -> None:
    name = f"wcpg{uuid.uuid4().hex[:8]}"
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    env = {**os.environ, "WALLETCHAOS_PG_USER": name}
    import time

    start_at = str(time.time() + 2.0)
    procs = [subprocess.Popen([sys.executable, "-c", START_ONE, str(tmp_path / f"pg{i}"), start_at],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
        failures = [(p.returncode, err[-800:]) for p, (_, err) in zip(procs, outs) if p.returncode != 0]
        assert not failures, f"clusters failed to start side by side: {failures}"
        entry = pwd.getpwnam(name)
        assert entry.pw_uid > 0
        assert len([line for line in Path("/etc/passwd").read_text().splitlines()
                    if line.startswith(name + ":")]) == 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        subprocess.run(["userdel", name], capture_output=True)
