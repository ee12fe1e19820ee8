"""Every rule of every checker fires in some test, by its name — so a new rule without a test fails CI.

How a check module declares its rules: next to `NAME`, a tuple `RULES` of every rule string it can pass to
`Findings.add` (the `rule` of its counterexamples), f-string rules spelled out per value
(conservation: "deposits_below_acknowledged", "withdrawals_below_acknowledged", ...). Modules are discovered
(every module of walletchaos.checks with NAME and check), so a new check module is covered without editing
this file. Three tests:

1. every discovered check module is registered in CHECKS and declares a non-empty RULES without duplicates;
2. RULES matches the source: every rule literal (or f-string pattern) handed to `.add(...)` or written as a
   `"rule": ...` counterexample member is declared, and every declared rule appears in the source;
3. the checker tests (the non-slow test files that import walletchaos.checks or tests.histories) run in a
   child pytest with tests/rule_recorder.py; each declared rule must have fired in a test file that names it literally (the assertion on it), not merely as a side effect; and every
   rule that fired must be declared (this catches rule names built at run time, e.g. f-strings).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import walletchaos.checks as checks_pkg
from tests.rule_recorder import ENV
from walletchaos.checks import CHECKS

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
NOT_CHECK_MODULES = frozenset({"base", "catalog", "index"})
CHECKER_TEST_MARKERS = ("walletchaos.checks", "tests.histories")


def check_modules() -> dict[str, ModuleType]:
    """NAME → module, for every module of walletchaos.checks that is a checker (has NAME and check)."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(checks_pkg.__path__):
        if info.name in NOT_CHECK_MODULES:
            continue
        module = importlib.import_module(f"{checks_pkg.__name__}.{info.name}")
        if hasattr(module, "NAME") and callable(getattr(module, "check", None)):
            found[module.NAME] = module
    return found


def declared_rules() -> dict[str, str]:
    """rule → check NAME, over every discovered module."""
    return {rule: name for name, module in check_modules().items() for rule in getattr(module, "RULES", ())}


def _pattern(node: ast.expr) -> re.Pattern[str] | None:
    """A rule literal as a regex (f-string placeholders match any name part), or None if not literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.compile(re.escape(node.value))
    if isinstance(node, ast.JoinedStr):
        return re.compile("".join(re.escape(v.value) if isinstance(v, ast.Constant) else r"\w+" for v in node.values))
    return None


def rule_literals(module: ModuleType) -> list[re.Pattern[str]]:
    """Rules the source reports: first argument of `<x>.add(...)` calls, values of "rule" dict members."""
    out: list[re.Pattern[str]] = []
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add" and node.args:
            p = _pattern(node.args[0])
        elif isinstance(node, ast.Dict):
            p = next((_pattern(v) for k, v in zip(node.keys, node.values)
                      if isinstance(k, ast.Constant) and k.value == "rule"), None)
        else:
            p = None
        if p is not None:
            out.append(p)
    return out


def test_every_check_module_is_registered_and_declares_its_rules() -> None:
    modules = check_modules()
    assert set(modules) == set(CHECKS), "check modules not registered in walletchaos/checks/__init__.py (or stale)"
    for name, module in modules.items():
        rules = getattr(module, "RULES", None)
        assert isinstance(rules, tuple) and rules, f"walletchaos/checks {name}: declare RULES = (...) next to NAME"
        assert len(set(rules)) == len(rules), f"{name}: duplicate names in RULES"
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", r) for r in rules), f"{name}: rule names are snake_case"
    owners: dict[str, list[str]] = {}
    for name, module in modules.items():
        for rule in module.RULES:
            owners.setdefault(rule, []).append(name)
    assert not {r: o for r, o in owners.items() if len(o) > 1}, "a rule name belongs to one check only"


def test_declared_rules_match_the_source() -> None:
    for name, module in check_modules().items():
        rules = tuple(getattr(module, "RULES", ()))
        source = inspect.getsource(module)
        for p in rule_literals(module):
            assert any(p.fullmatch(r) for r in rules), f"{name}: reports {p.pattern!r}, not declared in RULES"
        literal = [p for p in rule_literals(module)]
        for rule in rules:
            mentioned = source.count(f'"{rule}"') > 1 or any(p.fullmatch(rule) for p in literal
                                                               if p.pattern != re.escape(rule))
            assert mentioned, f"{name}: RULES declares {rule!r} but the source never reports it"


def checker_test_files() -> list[Path]:
    me = Path(__file__).resolve()
    return sorted(p for p in TESTS.glob("test_*.py")
                  if p != me and any(m in p.read_text(encoding="utf-8") for m in CHECKER_TEST_MARKERS))


def test_every_rule_fires_in_a_test_by_its_name(tmp_path: Path) -> None:
    out = tmp_path / "fired.json"
    files = [str(p.relative_to(ROOT)) for p in checker_test_files()]
    env = {**os.environ, ENV: str(out)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "tests.rule_recorder",
                           "-m", "not slow", *files], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    fired: dict[str, list[str]] = json.loads(out.read_text(encoding="utf-8"))
    declared = declared_rules()
    undeclared = {rule: files for rule, files in fired.items() if rule not in declared}
    assert not undeclared, f"rules reported by a check but missing from its RULES (rule: test files): {undeclared}"
    texts = {f: (ROOT / f).read_text(encoding="utf-8") for f in {f for fs in fired.values() for f in fs} if f}
    missing = {}
    for rule, check in sorted(declared.items()):
        named_in = [f for f in fired.get(rule, ()) if f and f'"{rule}"' in texts.get(f, "")]
        if not named_in:
            missing[rule] = (check, fired.get(rule, []))
    assert not missing, ("rules that never fire in a test naming them (rule: (check, files where it fired "
                         f"unnamed)): {missing}")
