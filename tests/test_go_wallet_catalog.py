"""The independent Go wallet (examples/go-wallet) as a target: conformance, then one scenario per fault
family, through the same CLI a user runs (`--target targets/go-wallet.yaml`). Every invariant must hold.

This is the proof that the harness tests a wallet it did not grow up with: nothing in the run path
knows it is not `mock_wallet`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.test_go_wallet import go_wallet_binary  # noqa: F401 - the session fixture that builds it

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WALLETCHAOS = ROOT / ".venv" / "bin" / "walletchaos"
TARGET = ROOT / "targets" / "go-wallet.yaml"
# one scenario per fault family: server, network, database, gateway, operations, load, combined
PER_FAMILY = ["wallet-kill", "network-flaky", "db-crash", "gateway-apply-then-drop", "login-brute-force",
              "peak-hour-congestion", "lost-response-restart"]


def test_go_wallet_passes_conformance(go_wallet_binary) -> None:  # noqa: F811
    res = subprocess.run([str(WALLETCHAOS), "conformance", "--target", str(TARGET)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr


def test_go_wallet_holds_one_scenario_per_fault_family(go_wallet_binary, tmp_path: Path) -> None:  # noqa: F811
    res = subprocess.run([str(WALLETCHAOS), "run", ",".join(PER_FAMILY), "--target", str(TARGET), "--seed", "1",
                          "--duration", "14", "--parallel", "2", "--report-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200)
    verdicts = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*-suite/*/verdict.json"))]
    failed = {v["scenario"]: [(r["name"], r["summary"]) for r in v.get("results", []) if not r["passed"]]
              or v.get("error") for v in verdicts if v.get("status") != "passed"}
    assert res.returncode == 0 and not failed, f"rc={res.returncode} {failed}\n{res.stdout[-3000:]}"
    assert sorted(v["scenario"] for v in verdicts) == sorted(PER_FAMILY)
    assert {v["meta"]["target"] for v in verdicts} == {"go-wallet"}
