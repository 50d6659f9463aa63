"""Bad input through the CLI: coded errors with locations, exit 1 (2 for usage), never a traceback.

In process (`cli`), except the tests of what a real interpreter's exit status is (`run_dyncc`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import EXAMPLES, ROOT, assert_no_traceback, cli, run_dyncc

JUNK = {
    "empty.yaml": b"",
    "binary.yaml": bytes(range(256)) * 4,
    "latin1.yaml": "name: caf\xe9\n".encode("latin-1"),
    "deep.yaml": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "tabs.yaml": b"apiVersion: dyncc/v1\n\tname: x\n",
    "dupkey.yaml": b"apiVersion: dyncc/v1\nname: a\nname: b\n",
    "intkey.yaml": b"apiVersion: dyncc/v1\n1: 2\n",
    "scalar.yaml": b"42\n",
    "huge-number.yaml": b"apiVersion: dyncc/v1\nname: t\nmodel: {path: m}\npools: {agg: {replicas: 99999999999999999999999}}\n",
    "negative.yaml": b"apiVersion: dyncc/v1\nname: t\nmodel: {path: m}\npools: {agg: {tensor_parallel: -4}}\n",
    "null-pool.yaml": b"apiVersion: dyncc/v1\nname: t\nmodel: {path: m}\npools: {agg: null}\n",
    "date.yaml": b"apiVersion: dyncc/v1\nname: 2026-01-01\nmodel: {path: m}\npools: {agg: {}}\n",
}


@pytest.mark.parametrize("name", sorted(JUNK))
def test_junk_is_a_coded_error(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(JUNK[name])
    proc = cli("validate", "--format", "json", path)
    assert_no_traceback(proc)
    assert proc.returncode == 1
    (report,) = json.loads(proc.stdout)["files"]
    assert report["diagnostics"] and all(d["code"].startswith("DYN0") for d in report["diagnostics"])
    assert all(d["line"] >= 1 for d in report["diagnostics"])


def test_missing_file_and_directory(tmp_path):
    for target in (tmp_path / "nope.yaml", tmp_path):
        proc = cli("validate", target)
        assert_no_traceback(proc)
        assert proc.returncode in (1, 2)
    proc = cli("validate", tmp_path / "nope.yaml")
    assert proc.returncode == 1 and "DYN002" in proc.stderr


def test_usage_errors_exit_2():
    assert cli("validate").returncode == 2
    assert cli("build", EXAMPLES / "agg.yaml", "-t", "nowhere").returncode == 2


def test_a_real_process_exits_0_valid_1_invalid_2_usage(tmp_path):
    """The exit status CI scripts see, from a real interpreter: click and sys.exit agree with the docs."""
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(JUNK["binary.yaml"])
    valid = run_dyncc("validate", EXAMPLES / "agg.yaml")
    invalid = run_dyncc("validate", "--format", "json", EXAMPLES / "agg.yaml", junk)
    usage = run_dyncc("build", EXAMPLES / "agg.yaml", "-t", "nowhere")
    assert (valid.returncode, invalid.returncode, usage.returncode) == (0, 1, 2), usage.stderr
    for proc in (valid, invalid, usage):
        assert_no_traceback(proc)
    assert [f["valid"] for f in json.loads(invalid.stdout)["files"]] == [True, False]
    assert "Invalid value for '-t' / '--target'" in usage.stderr


def test_an_unwritable_output_is_exit_1_from_a_real_process(tmp_path):
    proc = run_dyncc("build", EXAMPLES / "agg.yaml", "-o", "/proc/dyncc-out")
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "error DYN505" in proc.stderr


def _with_reader_gone(*args: object) -> subprocess.CompletedProcess[str]:
    """A real dyncc whose stdout is a pipe the reader has already closed, as `dyncc ... | head` ends."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "dyncc", *map(str, args)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [("validate", *sorted(EXAMPLES.glob("*.yaml"))), ("explain-code", "DYN101"), ("schema",)],
    ids=["validate", "explain-code", "schema"],
)
def test_a_reader_that_went_away_ends_dyncc_quietly_as_sigpipe_would(args):
    """Not DYN505 "cannot write output" and exit 1 (which says "invalid"): the status coreutils give, 141."""
    proc = _with_reader_gone(*args)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_only_stdout_without_a_reader_counts_as_the_reader_gone(monkeypatch):
    """A broken pipe elsewhere (to a child process) stays a coded error (DYN505): the boundary asks whether
    stdout itself lost its reader, which a pipe with a live reader has not."""
    from dyncc.cli import report

    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as stream:
        monkeypatch.setattr(sys, "stdout", stream)
        assert not report.stdout_reader_gone()
        os.close(read_end)
        assert report.stdout_reader_gone()
        monkeypatch.undo()
    assert report.os_error_diagnostic(BrokenPipeError(32, "Broken pipe"), {}).code == "DYN505"


def test_text_errors_show_code_location_and_hint():
    proc = cli("validate", EXAMPLES / "invalid" / "DYN010_unknown-key.yaml")
    assert proc.returncode == 1
    assert "DYN010_unknown-key.yaml:9:5: error DYN010: unknown key `tp`" in proc.stderr
    assert "did you mean `tensor_parallel`?" in proc.stderr


def test_json_report_shape():
    proc = cli(
        "validate", "--format", "json", EXAMPLES / "agg.yaml", EXAMPLES / "invalid" / "DYN403_too-many-gpus.yaml"
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["valid"] is False
    assert [f["valid"] for f in report["files"]] == [True, False]
    (error,) = report["files"][1]["diagnostics"]
    assert set(error) == {"code", "severity", "message", "path", "file", "line", "column", "hint"}
    assert error["path"] == "cluster.nodes"


def test_unwritable_output_paths_are_coded_errors(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    for args in (
        ["build", EXAMPLES / "agg.yaml", "-o", "/proc/dyncc-out"],
        ["init", "-o", missing / "spec.yaml"],
        ["schema", "-o", missing / "schema.json"],
        ["graph", EXAMPLES / "agg.yaml", "-o", missing / "g.mmd"],
    ):
        proc = cli(*args)
        assert_no_traceback(proc)
        assert proc.returncode == 1 and "error DYN505" in proc.stderr, (args, proc.stderr)


def test_explain_given_a_code_points_at_explain_code():
    proc = cli("explain", "DYN014")
    assert proc.returncode == 2 and "`dyncc explain-code DYN014`" in proc.stderr
    assert "cannot read spec file" not in proc.stderr


def test_validate_checks_a_spec_as_another_release_would_deploy_it(tmp_path):
    """`validate --dynamo-version` refuses what that release cannot run, as `build --dynamo-version` does."""
    spec = tmp_path / "s.yaml"
    spec.write_text(
        (EXAMPLES / "disagg_router.yaml").read_text().replace("  mode: kv\n", "  mode: kv\n  reset_states: true\n")
    )
    own = cli("validate", spec)  # the spec's own release, 1.6.1, dropped --router-reset-states
    assert own.returncode == 1 and "Dynamo 1.3.1 was the last release with it" in own.stderr
    assert cli("validate", spec, "--dynamo-version", "1.3.1").returncode == 0
    assert cli("build", spec, "--dynamo-version", "1.3.1", "-o", tmp_path / "o", "-t", "local").returncode == 0
    prefixed = cli("validate", spec, "--dynamo-version", "v1.3.1")
    assert prefixed.returncode == 1 and "did you mean `1.3.1`?" in prefixed.stderr


def _diagnostics(proc) -> list[dict]:
    return [d for f in json.loads(proc.stdout)["files"] for d in f["diagnostics"]]


def test_a_problem_with_a_value_the_command_line_gave_names_the_option_not_a_line(tmp_path):
    """The spec's own line holds another value (or none): pointing there would blame the file."""
    spec = tmp_path / "s.yaml"
    spec.write_text((EXAMPLES / "agg.yaml").read_text() + "dynamo:\n  version: 1.6.1\n")
    unknown = cli("validate", spec, "--dynamo-version", "9.9.9", "--format", "json")
    (release,) = [d for d in _diagnostics(unknown) if d["code"] == "DYN701"]
    assert release["message"].startswith("--dynamo-version 9.9.9: no release file for Dynamo 9.9.9")
    assert release["line"] is None and release["path"] == "dynamo.version"
    assert "apiVersion" not in cli("validate", spec, "--dynamo-version", "9.9.9").stderr
    # The file's own value is still located at its line.
    own = tmp_path / "own.yaml"
    own.write_text(spec.read_text().replace("version: 1.6.1", "version: 9.9.9"))
    (located,) = [d for d in _diagnostics(cli("validate", own, "--format", "json")) if d["code"] == "DYN701"]
    assert located["line"] == own.read_text().splitlines().index("  version: 9.9.9") + 1
    assert not located["message"].startswith("--")
    missing = cli(
        "build", EXAMPLES / "agg.yaml", "--engine", "mocker", "--timing", tmp_path / "no.npz", "-o", tmp_path / "o"
    )
    assert missing.returncode == 1 and f"--timing {tmp_path / 'no.npz'}: mocker_timing" in missing.stderr
    version_typo = cli("validate", EXAMPLES / "agg.yaml", "--dynamo-version", "v1.6.1")
    assert "at dynamo.version" in version_typo.stderr and "<document>" not in version_typo.stderr
