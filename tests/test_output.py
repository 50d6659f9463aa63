"""Atomic, owner-tracked output and the drift check."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXAMPLES, run_dyncc
from dyncc.diagnostics import DiagnosticError
from dyncc.output import write_tree


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rebuild_replaces_only_its_own_files_and_keeps_run_state(tmp_path):
    dest = tmp_path / "local"
    write_tree(dest, {"launch.sh": "one\n", "engine/agg.yaml": "a: 1\n"})
    (dest / "run" / "logs").mkdir(parents=True)
    (dest / "run" / "logs" / "frontend.log").write_text("log")
    write_tree(dest, {"launch.sh": "two\n"})
    assert (dest / "launch.sh").read_text() == "two\n"
    assert not (dest / "engine").exists()
    assert (dest / "run" / "logs" / "frontend.log").read_text() == "log"
    assert (dest / "launch.sh").stat().st_mode & 0o777 == 0o755
    assert not list(tmp_path.glob(".dyncc-tmp-*"))


def test_directory_with_foreign_files_is_refused(tmp_path):
    dest = tmp_path / "local"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(DiagnosticError) as exc:
        write_tree(dest, {"launch.sh": "x"})
    assert exc.value.diagnostics[0].code == "DYN502"
    assert (dest / "notes.txt").read_text() == "mine"

    write_tree(tmp_path / "ok", {"a.sh": "x"})
    (tmp_path / "ok" / "added-by-user").write_text("keep me")
    with pytest.raises(DiagnosticError):
        write_tree(tmp_path / "ok", {"a.sh": "y"})
    assert (tmp_path / "ok" / "added-by-user").read_text() == "keep me"


def test_failed_build_leaves_previous_output_untouched(tmp_path):
    out = tmp_path / "out"
    assert run_dyncc("build", EXAMPLES / "agg.yaml", "-o", out).returncode == 0
    before = snapshot(out)
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "agg.yaml").read_text().replace("replicas: 1", "replicas: 0"))
    proc = run_dyncc("build", bad, "-o", out)
    assert proc.returncode == 1 and "DYN013" in proc.stderr
    assert snapshot(out) == before


def test_check_reports_drift_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    assert run_dyncc("build", EXAMPLES / "agg.yaml", "-o", out).returncode == 0
    proc = run_dyncc("build", EXAMPLES / "agg.yaml", "-o", out, "--check")
    assert proc.returncode == 0 and "up to date" in proc.stdout
    (out / "local" / "engine" / "agg.yaml").write_text("edited by hand\n")
    before = snapshot(out)
    proc = run_dyncc("build", EXAMPLES / "agg.yaml", "-o", out, "--check")
    assert proc.returncode == 1 and "engine/agg.yaml" in proc.stdout
    assert snapshot(out) == before
