"""Atomic, owner-tracked output and the drift check."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES, cli, run_dyncc

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
    assert cli("build", EXAMPLES / "agg.yaml", "-o", out).returncode == 0
    before = snapshot(out)
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "agg.yaml").read_text().replace("replicas: 1", "replicas: 0"))
    proc = cli("build", bad, "-o", out)
    assert proc.returncode == 1 and "DYN013" in proc.stderr
    assert snapshot(out) == before


def test_check_reports_drift_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    assert cli("build", EXAMPLES / "agg.yaml", "-o", out).returncode == 0
    proc = cli("build", EXAMPLES / "agg.yaml", "-o", out, "--check")
    assert proc.returncode == 0 and "up to date" in proc.stdout
    (out / "local" / "engine" / "agg.yaml").write_text("edited by hand\n")
    before = snapshot(out)
    proc = cli("build", EXAMPLES / "agg.yaml", "-o", out, "--check")
    assert proc.returncode == 1 and "engine/agg.yaml" in proc.stdout
    assert snapshot(out) == before


SLOW_BUILD = """
import pathlib, sys, time
_write = pathlib.Path.write_text
def slow_write(self, *args, **kwargs):
    result = _write(self, *args, **kwargs)
    time.sleep(0.3)  # widen the window in which the build is writing its temporary tree
    return result
pathlib.Path.write_text = slow_write
from dyncc.cli import main
sys.argv = ["dyncc", *sys.argv[1:]]
main()
"""


def test_build_killed_mid_write_leaves_earlier_output_byte_identical(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    assert cli("build", EXAMPLES / "agg.yaml", "-t", "local", "-o", out).returncode == 0
    before = snapshot(out)
    other = EXAMPLES / "disagg_router.yaml"  # different files: a half-swap would show
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_BUILD, "build", str(other), "-t", "local", "-o", str(out)], cwd=EXAMPLES.parent
    )
    deadline = time.monotonic() + 60

    def written_files() -> list:
        # Files the build has put in its staging tree so far (its marker file aside).
        return [p for p in out.glob(".dyncc-tmp-*/*/**/*") if p.is_file()]

    # Kill it once a file or two are in the temporary tree: each write then sleeps 0.3 s, so the kill always
    # lands while the build is still writing, however loaded the machine is.
    while len(written_files()) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "the build never started writing"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(".dyncc-tmp-")} == before
    # The next build cleans up the killed one's leftovers and swaps in complete output.
    assert cli("build", other, "-t", "local", "-o", out).returncode == 0
    assert not list(out.glob(".dyncc-tmp-*"))
    assert "engine/prefill.yaml" in "\n".join(snapshot(out / "local"))


@pytest.mark.slow
def test_output_is_identical_from_another_directory_hash_seed_and_locale(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    copies = []
    for i, (seed, lang) in enumerate([("1", "C.UTF-8"), ("4242", "en_US.UTF-8")]):
        where = tmp_path / f"machine{i}" / "deep" / "er"
        shutil.copytree(EXAMPLES, where / "examples")
        env = {**os.environ, "PYTHONHASHSEED": seed, "LANG": lang, "TZ": ["UTC", "Asia/Tokyo"][i]}
        for example in ("disagg_router.yaml", "wide_ep.yaml", "deepseek_r1_mtp_disagg.yaml"):
            proc = subprocess.run(
                [sys.executable, "-m", "dyncc", "build", f"examples/{example}", "-o", f"out/{example}"],
                cwd=where,
                env=env,
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, proc.stderr
        copies.append(snapshot(where / "out"))
    assert copies[0] == copies[1] and len(copies[0]) > 10


def _build_all(out: Path) -> dict[str, bytes]:
    """A build in a fresh process: the template cache is per process in memory, on disk between runs."""
    proc = run_dyncc("build", EXAMPLES / "disagg_router.yaml", "-t", "all", "-o", out)
    assert proc.returncode == 0, proc.stderr
    return snapshot(out)


@pytest.mark.slow
def test_template_cache_fills_and_never_changes_output(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DYNCC_CACHE_DIR", "")
    uncached = _build_all(tmp_path / "uncached")
    monkeypatch.setenv("DYNCC_CACHE_DIR", str(cache))
    assert _build_all(tmp_path / "cold") == uncached
    entries = list(cache.rglob("*.cache"))
    assert len(entries) == 2  # launch.sh.j2 and job.sbatch.j2
    assert _build_all(tmp_path / "warm") == uncached
    for entry in entries:  # a damaged cache is recompiled, not trusted
        entry.write_bytes(b"j2 not bytecode")
    assert _build_all(tmp_path / "damaged") == uncached


def test_unusable_template_cache_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNCC_CACHE_DIR", "")
    uncached = _build_all(tmp_path / "uncached")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("DYNCC_CACHE_DIR", str(blocker))
    assert _build_all(tmp_path / "blocked") == uncached
