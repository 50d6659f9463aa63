"""A spec format users commit is a contract: every spec that validated in an earlier release still
validates (old forms with a DYN021 warning naming the new form), and `dyncc migrate` rewrites old forms
into a spec that builds the same files without the warning.

tests/data/released-specs/ holds every distinct spec examples/ had before the current format (read from
git history, named <example>@<commit>) and the documented 0.1.0 forms of the mock engine switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_no_traceback, cli

# Checks added after these specs were written, that refuse what would not start. Nothing else may refuse them.
CHECKS_SINCE = {
    "DYN140": "GPU memory fit (issue 32): DeepSeek-R1 FP8 at TP4 does not hold its weights on B200/GB200",
}
RELEASED = sorted((Path(__file__).parent / "data" / "released-specs").glob("*.yaml"))


@pytest.mark.parametrize("spec", RELEASED, ids=lambda p: p.name)
def test_a_spec_that_validated_in_a_release_still_validates(spec):
    proc = cli("validate", "--format", "json", spec)
    assert_no_traceback(proc)
    report = json.loads(proc.stdout)["files"][0]
    errors = {d["code"] for d in report["diagnostics"] if d["severity"] == "error"}
    # The format is a contract; what a newer check finds would fail at start-up is not: such refusals are
    # named here with the reason, and no loading (DYN0xx) error may appear.
    assert errors <= set(CHECKS_SINCE), report["diagnostics"]
    for d in report["diagnostics"]:
        if d["code"] == "DYN021":
            # The warning names the new form and where the old one is.
            assert d["severity"] == "warning" and "read as `" in d["message"] and d["line"] > 1, d


def test_old_forms_are_warned_about_at_their_line():
    spec = next(p for p in RELEASED if p.name.startswith("local_mocker"))
    proc = cli("validate", "--format", "json", spec)
    found = {(d["code"], d["path"], d["line"]) for d in json.loads(proc.stdout)["files"][0]["diagnostics"]}
    assert ("DYN021", "local.engine", 11) in found and ("DYN021", "local.mocker_speedup_ratio", 12) in found


@pytest.mark.parametrize("spec", [p for p in RELEASED if "mocker@" in p.name], ids=lambda p: p.name)
def test_migrate_rewrites_old_forms_and_builds_the_same_files(spec, tmp_path):
    # Both specs under one name, so that the files that name their spec compare equal too.
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old_spec, new_spec = tmp_path / "old" / "spec.yaml", tmp_path / "new" / "spec.yaml"
    old_spec.write_bytes(spec.read_bytes())
    proc = cli("migrate", old_spec, "-o", new_spec)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "local.engine -> worker_runtime: mocker" in proc.stderr  # the change list
    text = new_spec.read_text()
    assert "\nworker_runtime: mocker\n" in text and "  engine:" not in text
    if "# the mock engine" in spec.read_text():
        assert text.startswith("# The form dyncc 0.1.0")  # comments of kept lines survive
    check = cli("validate", "--format", "json", new_spec)
    assert check.returncode == 0
    assert "DYN021" not in {d["code"] for d in json.loads(check.stdout)["files"][0]["diagnostics"]}
    trees = []
    for which in (old_spec, new_spec):
        out = which.parent / "out"
        assert cli("build", which, "-t", "local", "-o", out).returncode == 0
        trees.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert trees[0] == trees[1]
    assert any(b"--speedup-ratio" in data for data in trees[1].values())


def test_migrate_refuses_old_forms_that_disagree(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: x\nmodel: {path: m, moe: false}\npools: {agg: {}}\n"
        "local: {engine: mocker}\nslurm: {engine: trtllm}\n"
    )
    proc = cli("migrate", spec)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "DYN022" in proc.stderr and "s.yaml:6:" in proc.stderr


def test_migrate_leaves_a_current_spec_as_it_is():
    example = Path(__file__).parent.parent / "examples" / "disagg_router.yaml"
    proc = cli("migrate", example)
    assert proc.returncode == 0 and proc.stdout == example.read_text()
    assert "nothing to change" in proc.stderr
