"""The one registry of diagnostic codes (dyncc/codes.yaml): complete, every code shown by an example,
`dyncc explain-code` prints it, and docs/error-codes.md (its table and entries) is generated from it."""

from __future__ import annotations

import re
import sys

import pytest
from conftest import EXAMPLES, INVALID_EXAMPLES, ROOT, cli, expected_failure

from dyncc.codes import example_for, lookup, registry

INVALID = EXAMPLES / "invalid"
CODE_IN_SOURCE = re.compile(r"""["'](DYN\d{3})["']""")


def _codes_used_in_dyncc() -> dict[str, str]:
    used: dict[str, str] = {}
    for path in sorted((ROOT / "dyncc").rglob("*.py")):
        for code in CODE_IN_SOURCE.findall(path.read_text(encoding="utf-8")):
            used.setdefault(code, str(path.relative_to(ROOT)))
    return used


def test_every_code_used_in_dyncc_is_registered():
    used = _codes_used_in_dyncc()
    assert len(used) > 50  # the scan finds the codes (it can fail)
    missing = {code: where for code, where in used.items() if code not in registry()}
    assert not missing, f"add these to dyncc/codes.yaml: {missing}"


def test_every_registered_code_is_well_formed():
    for info in registry().values():
        assert re.fullmatch(r"DYN\d{3}", info.code) and info.family  # a family the code's digits name
        assert info.severity in ("error", "warning", "info") and info.title and len(info.explanation) > 40


def test_every_registered_code_has_an_invalid_example_or_says_why_not():
    lacking = [
        c.code for c in registry().values() if c.no_example_because is None and example_for(c.code, INVALID) is None
    ]
    assert not lacking, f"add examples/invalid/<CODE>_*.yaml, or `example: none — reason` in codes.yaml: {lacking}"


def test_every_invalid_example_is_named_for_the_code_it_expects():
    for example in INVALID_EXAMPLES:
        code = expected_failure(example)[0]
        assert example.name.startswith(f"{code}_") and lookup(code) is not None, example.name


def test_explain_code_prints_the_explanation_and_the_example():
    proc = cli("explain-code", "DYN205")
    assert proc.returncode == 0, proc.stderr
    info = lookup("DYN205")
    assert info is not None
    assert proc.stdout.startswith(f"DYN205 (error, disaggregation): {info.title}")
    assert " ".join(proc.stdout.split()).count(info.explanation) == 1
    example = example_for("DYN205", INVALID)
    assert example is not None and example.read_text() in proc.stdout


def test_explain_code_is_case_insensitive_and_says_when_there_is_no_example():
    proc = cli("explain-code", "dyn505")
    assert proc.returncode == 0 and "No example spec:" in proc.stdout


@pytest.mark.parametrize("code", ["DYN999", "E0308", ""])
def test_unknown_code_is_a_usage_error(code):
    proc = cli("explain-code", code)
    assert proc.returncode == 2 and "not a dyncc diagnostic code" in proc.stderr


def test_error_codes_doc_and_its_table_are_current():
    sys.path.insert(0, str(ROOT / "scripts"))
    from gen_docs import error_codes_doc

    doc = (ROOT / "docs" / "error-codes.md").read_text()
    assert doc == error_codes_doc(registry(), INVALID), "run scripts/gen_docs.py"
    assert all(f"| [{code}](#{code.lower()}) |" in doc and f"\n## {code}\n" in doc for code in registry())
