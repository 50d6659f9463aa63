"""Codes are raised through the registry (dyncc/codes.yaml): a code it does not register, or a severity its
entry does not list, fails a test. Two checks, so neither test coverage nor a helper function hides one:

- at run time, with DYNCC_CHECK_CODES=1 (tests/conftest.py sets it for the tests and every dyncc process they
  start), each Diagnostic is checked as it is made and when ``msgspec.structs.replace`` remakes it (msgspec 0.21+ runs ``__post_init__`` there);
- statically, every place in dyncc/ that names a code beside a severity is read with ``ast``: a
  ``Diagnostic(...)``, a call of a helper that passes its ``code`` parameter on to one, and the ``finding(...)``
  calls of a function registered with ``@rule(..., "DYNnnn", ...)`` (which stamps its code on them).
"""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from conftest import ROOT

from dyncc.codes import registry
from dyncc.diagnostics import CHECK_CODES, Diagnostic, UnregisteredCode

CODE_PREFIX = "DYN"
DEFAULT_SEVERITY = "error"  # Diagnostic's and finding's default


# --- run time -----------------------------------------------------------------------------------------


def test_the_tests_run_with_the_check_on():
    assert CHECK_CODES and os.environ["DYNCC_CHECK_CODES"] == "1"


@pytest.mark.parametrize(
    ("code", "severity"),
    [("DYN999", "error"), ("E0308", "error"), ("dyn001", "error"), ("DYN001", "warning"), ("DYN581", "error")],
)
def test_an_unregistered_code_or_a_wrong_severity_raises(code, severity):
    with pytest.raises(UnregisteredCode):
        Diagnostic(code, "message", severity=severity)


def test_a_registered_code_at_a_listed_severity_is_made():
    assert Diagnostic("DYN001", "message").severity == "error"
    assert Diagnostic("DYN581", "message", severity="warning").code == "DYN581"


def test_replace_is_checked_too():
    refusal = Diagnostic("DYN501", "the local target runs one node")
    assert msgspec.structs.replace(refusal, severity="info").severity == "info"  # `-t all` skips: registered
    with pytest.raises(UnregisteredCode):
        msgspec.structs.replace(refusal, severity="warning")
    with pytest.raises(UnregisteredCode):
        msgspec.structs.replace(refusal, code="DYN999")


def test_every_also_raised_as_is_another_known_severity():
    for info in registry().values():
        assert len(set(info.severities)) == len(info.severities), info.code
        assert set(info.severities) <= {"error", "warning", "info"}, info.code


def test_a_refusal_that_build_all_turns_into_a_note_is_registered_as_info():
    # api._skip_note remakes a blocking refusal at severity info when `-t all` skips the target.
    from dyncc.targets.base import FEATURES

    blocking = {f.code for f in FEATURES if f.blocking}
    assert len(blocking) >= 5
    assert all("info" in registry()[code].severities for code in blocking), blocking


def test_users_pay_nothing_without_the_variable():
    env = {k: v for k, v in os.environ.items() if k != "DYNCC_CHECK_CODES"}
    probe = (
        "import sys; from dyncc.diagnostics import Diagnostic; Diagnostic('DYN999', 'x', severity='info'); "
        "print(hasattr(Diagnostic, '__post_init__'), 'dyncc.codes' in sys.modules, 'yaml' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False", "False"]


# --- statically ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Raise:
    where: str  # file:line
    code: str
    severity: str


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1]):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


# Diagnostic(code, message, path, hint, severity, location): the positions of code and severity.
DIAGNOSTIC_CODE, DIAGNOSTIC_SEVERITY = 0, 4
FINDING_SEVERITY = 3  # finding(message, path, hint, severity)


@dataclasses.dataclass(frozen=True)
class Helper:
    """A function that passes its parameter ``code`` on to a Diagnostic: its calls name the code."""

    code_index: int
    severity: str | None  # literal in the helper's Diagnostic
    severity_param: tuple[int, str | None] | None  # or passed through from this parameter (index, default)


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted((ROOT / "dyncc").rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))


def _helpers(modules: list[tuple[str, ast.Module]]) -> dict[str, Helper]:
    found: dict[str, Helper] = {}
    for _, tree in modules:
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            offset = 1 if params[:1] in (["self"], ["cls"]) else 0
            defaults = dict(zip(reversed(params), reversed([_literal(d) for d in fn.args.defaults]), strict=False))
            for call in ast.walk(fn):
                if not (isinstance(call, ast.Call) and _name(call.func) == "Diagnostic"):
                    continue
                code = _argument(call, DIAGNOSTIC_CODE, "code")
                if not (isinstance(code, ast.Name) and code.id in params):
                    continue
                severity = _argument(call, DIAGNOSTIC_SEVERITY, "severity")
                through = None
                if isinstance(severity, ast.Name) and severity.id in params:
                    through = (params.index(severity.id) - offset, defaults.get(severity.id))
                found[fn.name] = Helper(
                    params.index(code.id) - offset,
                    DEFAULT_SEVERITY if severity is None else _literal(severity),
                    through,
                )
    return found


def _rule_code(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    for decorator in fn.decorator_list:
        if isinstance(decorator, ast.Call) and _name(decorator.func) == "rule":
            for arg in decorator.args:
                if (code := _literal(arg)) and code.startswith(CODE_PREFIX):
                    return code
    return None


def raises_in_dyncc() -> tuple[list[Raise], list[str]]:
    """Every (code, severity) dyncc/ raises where both are literal, and the places a Diagnostic is made with
    the rules' not-yet-stamped code outside a ``finding`` helper."""
    modules = list(_modules())
    helpers = _helpers(modules)
    found: list[Raise] = []
    unstamped: list[str] = []
    for file, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (code := _rule_code(node)):
                for call in ast.walk(node):
                    if isinstance(call, ast.Call) and _name(call.func) == "finding":
                        severity = _argument(call, FINDING_SEVERITY, "severity")
                        level = DEFAULT_SEVERITY if severity is None else _literal(severity)
                        if level is not None:
                            found.append(Raise(f"{file}:{call.lineno}", code, level))
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            where = f"{file}:{node.lineno}"
            if name == "Diagnostic":
                code = _literal(_argument(node, DIAGNOSTIC_CODE, "code"))
                severity = _argument(node, DIAGNOSTIC_SEVERITY, "severity")
                level = DEFAULT_SEVERITY if severity is None else _literal(severity)
                if code == "":
                    unstamped.append(where)
                elif code is not None and level is not None:
                    found.append(Raise(where, code, level))
            elif name in helpers:
                helper = helpers[name]
                code = _literal(_argument(node, helper.code_index, "code"))
                if code is None or not code.startswith(CODE_PREFIX):
                    continue
                level = helper.severity
                if helper.severity_param is not None:
                    index, default = helper.severity_param
                    passed = _argument(node, index, "severity")
                    level = default if passed is None else _literal(passed)
                if level is not None:
                    found.append(Raise(where, code, level))
    return found, unstamped


def test_every_code_raised_in_dyncc_is_registered_at_that_severity():
    found, _ = raises_in_dyncc()
    assert len(found) > 250 and len({r.code for r in found}) > 150  # the scan finds the raises (it can fail)
    wrong = [
        f"{r.where}: {r.code} raised as {r.severity}, registered as "
        f"{' or '.join(registry()[r.code].severities) if r.code in registry() else 'nothing'}"
        for r in found
        if r.code not in registry() or r.severity not in registry()[r.code].severities
    ]
    assert not wrong, "register the code (or the severity, under also_raised_as) in dyncc/codes.yaml:\n" + "\n".join(
        wrong
    )


def test_only_the_finding_helpers_make_an_unstamped_diagnostic():
    # A rule's finding gets its code from @rule; anywhere else a Diagnostic without a code would escape both
    # checks (the run-time one lets the not-yet-stamped code through).
    _, unstamped = raises_in_dyncc()
    assert len(unstamped) >= 2 and all(_in_finding(where) for where in unstamped), unstamped


def _in_finding(where: str) -> bool:
    file, line = where.rsplit(":", 1)
    tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
    return any(
        isinstance(fn, ast.FunctionDef) and fn.name == "finding" and fn.lineno <= int(line) <= (fn.end_lineno or 0)
        for fn in ast.walk(tree)
    )


def test_the_static_scan_catches_a_wrong_severity_and_an_unregistered_code(tmp_path, monkeypatch):
    probe = tmp_path / "dyncc"
    (probe / "compiler").mkdir(parents=True)
    (probe / "compiler" / "bad.py").write_text(
        "from dyncc.diagnostics import Diagnostic\n"
        "def helper(code, message, severity='warning'):\n"
        "    return Diagnostic(code, message, severity=severity)\n"
        "@rule(RULES, 'DYN108', 'probe')\n"
        "def probe(graph):\n"
        "    yield finding('m', (), severity='info')\n"
        "A = Diagnostic('DYN999', 'm')\n"
        "B = Diagnostic('DYN001', 'm', severity='warning')\n"
        "C = helper('DYN002', 'm')\n"
        "D = Diagnostic('', 'm')\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", Path(tmp_path))
    found, unstamped = raises_in_dyncc()
    wrong = {(r.code, r.severity) for r in found if r.severity not in getattr(registry().get(r.code), "severities", ())}
    assert wrong == {("DYN108", "info"), ("DYN999", "error"), ("DYN001", "warning"), ("DYN002", "warning")}
    assert unstamped == ["dyncc/compiler/bad.py:10"]
