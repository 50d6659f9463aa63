"""Hardened output (issue 14, output side): concurrent builds take turns, swaps are all-or-nothing across
targets, nothing dyncc did not write is deleted, and no special file blocks or crashes a build."""

from __future__ import annotations

import errno
import fcntl
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, assert_no_traceback, run_dyncc

from dyncc import api, output
from dyncc.diagnostics import DiagnosticError
from dyncc.output import LOCK, MANIFEST, drift, swap, write_new_file, write_tree

SPEC_A = EXAMPLES / "agg.yaml"
SPEC_B = EXAMPLES / "disagg_router.yaml"  # other files than SPEC_A in every target: a mix would show


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` except the (empty, persistent) lock file."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != LOCK}


def without_staging(tree: dict[str, bytes]) -> dict[str, bytes]:
    return {rel: data for rel, data in tree.items() if not rel.startswith(".dyncc-tmp-")}


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".dyncc-tmp-"))


def codes(exc: pytest.ExceptionInfo[DiagnosticError]) -> list[str]:
    return [d.code for d in exc.value.diagnostics]


@pytest.fixture(scope="module")
def expected(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """What a lone ``-t all`` build of each spec writes."""
    trees = {}
    for spec in (SPEC_A, SPEC_B):
        out = tmp_path_factory.mktemp(spec.stem)
        api.build(spec, ["all"], out)
        trees[spec.name] = snapshot(out)
    assert trees[SPEC_A.name].keys() != trees[SPEC_B.name].keys()
    return trees


# --- D-01: concurrent builds into one -o --------------------------------------------------------------


def _build_and_exit(spec: Path, out: Path) -> None:  # runs in a forked child
    try:
        api.build(spec, ["all"], out)
    except DiagnosticError:
        os._exit(2)
    os._exit(0)


def _build_when_told(spec: Path, out: Path, go) -> None:  # runs in a forked child
    go.wait(10)
    _build_and_exit(spec, out)


def _run_children(*children) -> list[int | None]:
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    return [child.exitcode for child in children]


@pytest.mark.slow  # ~10 s on 2 busy cores
def test_50_rounds_of_two_concurrent_builds_leave_exactly_one_build(tmp_path, expected):
    """Two processes build different specs into one -o at the same moment, 50 times over the same tree:
    both succeed (they take turns on the lock) and the tree is always exactly one of the two builds. Which
    one is left is the scheduler's choice; the next test fixes the order and checks the winner."""
    fork = multiprocessing.get_context("fork")
    out = tmp_path / "out"
    for round_ in range(50):
        go = fork.Event()
        specs = (SPEC_A, SPEC_B) if round_ % 2 else (SPEC_B, SPEC_A)
        children = [fork.Process(target=_build_when_told, args=(spec, out, go)) for spec in specs]
        for child in children:
            child.start()
        go.set()
        for child in children:
            child.join(60)
        assert [child.exitcode for child in children] == [0, 0], f"round {round_}"
        tree = snapshot(out)
        assert tree in (expected[SPEC_A.name], expected[SPEC_B.name]), f"round {round_}: a mixed or missing tree"
        assert leftovers(out) == [], f"round {round_}"


def _build_holding_the_lock(spec: Path, out: Path, holding, contended) -> None:  # runs in a forked child
    """Build ``spec``; once inside the lock, say so, and stay there until the other build found it taken."""
    real_stage = output.stage

    def stage_once_contended(*args, **kwargs):
        holding.set()
        contended.wait(30)
        return real_stage(*args, **kwargs)

    output.stage = stage_once_contended  # this forked child's copy only
    _build_and_exit(spec, out)


def _build_once_the_lock_is_held(spec: Path, out: Path, holding, contended) -> None:  # runs in a forked child
    """Build ``spec`` while the other build holds the lock, saying when the lock was found taken."""
    real_flock = fcntl.flock

    def flock(fd, operation):
        try:
            return real_flock(fd, operation)
        except BlockingIOError:
            contended.set()
            raise

    fcntl.flock = flock  # this forked child's copy only
    holding.wait(30)
    _build_and_exit(spec, out)


@pytest.mark.parametrize("first", [SPEC_A, SPEC_B], ids=lambda p: p.stem)
def test_a_build_that_finds_the_lock_taken_waits_and_its_tree_is_the_one_left(tmp_path, expected, first):
    """The order fixed: one build holds the lock (mid-build) until the other has found it taken; both
    succeed, and the tree is exactly the second build's, whichever spec goes first."""
    second = SPEC_B if first == SPEC_A else SPEC_A
    fork = multiprocessing.get_context("fork")
    out = tmp_path / "out"
    holding, contended = fork.Event(), fork.Event()
    children = [
        fork.Process(target=_build_holding_the_lock, args=(first, out, holding, contended)),
        fork.Process(target=_build_once_the_lock_is_held, args=(second, out, holding, contended)),
    ]
    assert _run_children(*children) == [0, 0]
    assert contended.is_set(), "the second build never found the lock taken"
    assert snapshot(out) == expected[second.name]
    assert leftovers(out) == []


def test_two_concurrent_cli_builds_into_one_out(tmp_path, expected):
    """The same across real processes, through the CLI (exit codes, the lock file between two interpreters)."""
    out = tmp_path / "out"
    for _ in range(1):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "dyncc", "build", str(spec), "-o", str(out)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for spec in (SPEC_A, SPEC_B)
        ]
        results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in procs]
        for p in procs:
            p.stdout.close() if p.stdout else None
            p.stderr.close() if p.stderr else None
        assert [rc for rc, _ in results] == [0, 0], results
        assert snapshot(out) in (expected[SPEC_A.name], expected[SPEC_B.name])
        assert leftovers(out) == []


def test_a_build_waiting_too_long_for_the_lock_is_a_coded_error(tmp_path):
    out = tmp_path / "out"
    api.build(SPEC_A, ["local"], out)
    before = snapshot(out)
    with open(out / LOCK) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(DiagnosticError) as exc:
            api.build(SPEC_B, ["local"], out, lock_timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 5
    assert codes(exc) == ["DYN506"] and str(out / LOCK) in exc.value.diagnostics[0].message
    assert snapshot(out) == before and leftovers(out) == []


def test_a_failed_exchange_is_reported_not_papered_over(tmp_path, monkeypatch):
    """The old fallback moved the existing output aside after *any* renameat2 failure and lost it when
    the second rename failed; now only a kernel without the flag takes the fallback."""
    dest = tmp_path / "k8s"
    write_tree(dest, {"a.yaml": "previous good output\n"})
    monkeypatch.setattr(swap, "_renameat2", lambda a, b, flags: errno.ENOENT)
    with pytest.raises(DiagnosticError) as exc:
        write_tree(dest, {"a.yaml": "new output\n"})
    assert codes(exc) == ["DYN505"]
    assert (dest / "a.yaml").read_text() == "previous good output\n"
    assert leftovers(tmp_path) == []


def test_the_two_rename_fallback_puts_the_old_output_back_when_the_second_rename_fails(tmp_path, monkeypatch):
    dest = tmp_path / "k8s"
    write_tree(dest, {"a.yaml": "previous good output\n"})
    (dest / "run").mkdir()
    (dest / "run" / "frontend.log").write_text("log")
    monkeypatch.setattr(swap, "_renameat2", lambda a, b, flags: errno.ENOSYS)
    real_rename = os.rename

    def rename(src, dst):
        if Path(src).name == "tree" and Path(dst) == dest:
            raise OSError(errno.EIO, "I/O error", str(dst))
        real_rename(src, dst)

    monkeypatch.setattr(output.os, "rename", rename)
    with pytest.raises(DiagnosticError) as exc:
        write_tree(dest, {"a.yaml": "new output\n"})
    assert codes(exc) == ["DYN505"]
    assert snapshot(dest) == {MANIFEST: (dest / MANIFEST).read_bytes(), "a.yaml": b"previous good output\n"} | {
        "run/frontend.log": b"log"
    }
    assert leftovers(tmp_path) == []
    monkeypatch.setattr(output.os, "rename", real_rename)
    write_tree(dest, {"a.yaml": "new output\n"})  # and the fallback itself works
    assert (dest / "a.yaml").read_text() == "new output\n" and (dest / "run" / "frontend.log").read_text() == "log"


def test_old_output_parked_by_a_killed_fallback_swap_is_restored_by_the_next_build(tmp_path, monkeypatch):
    dest = tmp_path / "k8s"
    write_tree(dest, {"a.yaml": "previous good output\n"})
    monkeypatch.setattr(swap, "_renameat2", lambda a, b, flags: errno.ENOSYS)
    real_rename = os.rename

    def killed_after_first_rename(src, dst):
        real_rename(src, dst)
        if Path(src) == dest:
            raise SystemExit("killed")  # SIGKILL here: no cleanup runs

    monkeypatch.setattr(output.os, "rename", killed_after_first_rename)
    monkeypatch.setattr(output, "unpark", lambda item: None)
    monkeypatch.setattr(output, "remove_staging", lambda root: None)
    with pytest.raises(SystemExit):
        write_tree(dest, {"a.yaml": "new output\n"})
    assert not dest.exists() and len(leftovers(tmp_path)) == 1
    monkeypatch.undo()
    write_tree(tmp_path / "local", {"x.sh": "x"})  # any next build into the same -o
    assert (dest / "a.yaml").read_text() == "previous good output\n"
    assert leftovers(tmp_path) == []


# --- D-14: several targets, all old or all new ----------------------------------------------------------


def test_a_failure_while_swapping_targets_rolls_every_target_back(tmp_path, monkeypatch, expected):
    out = tmp_path / "out"
    api.build(SPEC_A, ["all"], out)
    real_exchange = swap._exchange
    swaps = []

    def fail_on_second_target(a, b, aside):
        swaps.append(b.name)
        if len(swaps) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(b))
        real_exchange(a, b, aside)

    monkeypatch.setattr(swap, "_exchange", fail_on_second_target)
    with pytest.raises(DiagnosticError) as exc:
        api.build(SPEC_B, ["all"], out)
    assert codes(exc) == ["DYN505"] and "No space left" in exc.value.diagnostics[0].message
    assert len(swaps) == 3  # the second target failed, the first was swapped back
    assert snapshot(out) == expected[SPEC_A.name]
    assert leftovers(out) == []


def signals_as_from_a_shell() -> None:
    """The build starts as a shell starts a command: default signal actions, nothing blocked. (A child
    inherits ignored and blocked signals from the test process, whatever pytest and its workers set.)"""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


# The child stops after its first swap until the test's signal is pending (held off by the swap's signal
# mask), so the signal always lands with one target new and the others still old, however loaded the
# machine is.
SIGNALLED_BUILD = """
import os, pathlib, signal, sys, time
import dyncc.output.swap as swap
flag = pathlib.Path(sys.argv[1])
real_exchange = swap._exchange
def slow_exchange(a, b, aside):
    real_exchange(a, b, aside)
    if not flag.exists():
        flag.write_text("first target swapped")
        deadline = time.monotonic() + 60
        while not signal.sigpending() and time.monotonic() < deadline:
            time.sleep(0.01)
swap._exchange = slow_exchange
from dyncc.cli import main
sys.argv = ["dyncc", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_swap_lands_after_every_target_is_new(tmp_path, signum, expected):
    out, flag = tmp_path / "out", tmp_path / "swapping"
    api.build(SPEC_A, ["all"], out)
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGNALLED_BUILD, str(flag), "build", str(SPEC_B), "-t", "all", "-o", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=signals_as_from_a_shell,
    )
    deadline = time.monotonic() + 30
    while not flag.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the build never reached the swap"
        time.sleep(0.01)
    proc.send_signal(signum)
    assert proc.wait(30) != 0  # it was stopped ...
    # ... but only once every target was in (a SIGTERM'd build had no time to remove its staging dirs)
    assert without_staging(snapshot(out)) == expected[SPEC_B.name]
    api.build(SPEC_B, ["all"], out)  # the next build removes what the stopped one left
    assert leftovers(out) == []


# The child waits after staging its second file until the test's Ctrl-C interrupts it: the signal always
# arrives while the targets are being staged.
SLOW_STAGING = """
import pathlib, sys, time
flag = pathlib.Path(sys.argv[1])
_write = pathlib.Path.write_bytes
written = []
def slow_write(self, *args, **kwargs):
    result = _write(self, *args, **kwargs)
    written.append(self)
    if len(written) == 2:
        flag.write_text("staging")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.01)
    return result
pathlib.Path.write_bytes = slow_write
from dyncc.cli import main
sys.argv = ["dyncc", *sys.argv[2:]]
main()
"""


def test_a_ctrl_c_while_staging_leaves_every_target_old(tmp_path, expected):
    out, flag = tmp_path / "out", tmp_path / "staging"
    api.build(SPEC_A, ["all"], out)
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_STAGING, str(flag), "build", str(SPEC_B), "-t", "all", "-o", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=signals_as_from_a_shell,
    )
    deadline = time.monotonic() + 30
    while not flag.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the build never started staging"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) != 0
    assert snapshot(out) == expected[SPEC_A.name]
    assert leftovers(out) == []  # an interrupted (not killed) build cleans up after itself


# --- D-08 / D-22: nothing dyncc did not write is deleted -------------------------------------------------


def test_user_files_inside_generated_folders_are_never_deleted(tmp_path):
    out = tmp_path / "out"
    api.build(SPEC_A, ["local"], out)
    engine = out / "local" / "engine"
    cases = {
        "engine/NOTES.txt": lambda: (engine / "NOTES.txt").write_text("notes"),
        "engine/mine": lambda: (engine / "mine").mkdir(),
        "engine/agg.yaml": lambda: ((engine / "agg.yaml").unlink(), (engine / "agg.yaml").symlink_to("/etc/hostname")),
    }
    for foreign, make in cases.items():
        api.build(SPEC_A, ["local"], out)
        make()
        before = snapshot(out)
        with pytest.raises(DiagnosticError) as exc:
            api.build(SPEC_B, ["local"], out)
        assert codes(exc) == ["DYN502"] and foreign in exc.value.diagnostics[0].message
        assert snapshot(out) == before and os.path.lexists(out / "local" / foreign)
        target = out / "local" / foreign
        target.rmdir() if target.is_dir() and not target.is_symlink() else target.unlink()


def test_user_directories_named_like_temp_dirs_survive_builds(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    token = "0123456789abcdef" * 2
    squatters = {
        ".dyncc-tmp-backup": None,  # the reproducer's: does not even have our name shape
        f".dyncc-tmp-local-{token}": None,  # our name shape, no marker
        f".dyncc-tmp-k8s-{token}": json.dumps({"token": "f" * 32, "target": "k8s"}),  # a marker for another token
    }
    for name, marker in squatters.items():
        (out / name).mkdir()
        (out / name / "data").write_text("keep me")
        if marker is not None:
            (out / name / ".dyncc-staging").write_text(marker)
    api.build(SPEC_A, ["all"], out)
    api.build(SPEC_B, ["all"], out)
    for name in squatters:
        assert (out / name / "data").read_text() == "keep me", name


# --- D-18: a symlinked target directory -----------------------------------------------------------------


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlinked_target_directory_is_refused_with_a_code(tmp_path, dangling):
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    if not dangling:
        victim.mkdir()
        (victim / "precious").write_text("x")
    (out / "local").symlink_to(victim)
    with pytest.raises(DiagnosticError) as exc:
        api.build(SPEC_A, ["local"], out)
    assert codes(exc) == ["DYN507"]
    assert (out / "local").is_symlink() and leftovers(out) == []
    assert dangling and not victim.exists() or sorted(os.listdir(victim)) == ["precious"]


# --- D-22: special files never block --------------------------------------------------------------------


def _outcome(spec: Path, out: Path, check: bool) -> list[str]:
    """The build's drift (with ``check``), or its error codes; ``[]`` when it wrote."""
    try:
        result = api.build(spec, ["local"], out, check=check)
    except DiagnosticError as exc:
        return [d.code for d in exc.diagnostics]
    return [rel for target in result.outputs for rel in target.drift]


def _report(queue, spec: Path, out: Path, check: bool) -> None:  # runs in a forked child
    queue.put(_outcome(spec, out, check))


def bounded(spec: Path, out: Path, check: bool = False, timeout: float = 20) -> list[str]:
    """``_outcome`` in a forked child: a build that blocks fails this test instead of hanging the suite."""
    fork = multiprocessing.get_context("fork")
    queue = fork.SimpleQueue()
    child = fork.Process(target=_report, args=(queue, spec, out, check))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"the build blocked for {timeout} s")
    return queue.get()


def test_a_fifo_manifest_never_blocks_the_cli(tmp_path):
    out = tmp_path / "out"
    api.build(SPEC_A, ["local"], out)
    manifest = out / "local" / MANIFEST
    manifest.unlink()
    os.mkfifo(manifest)
    proc = run_dyncc("build", SPEC_A, "-t", "local", "-o", out, timeout=30)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "error DYN508" in proc.stderr and MANIFEST in proc.stderr


def test_special_files_in_the_output_never_block_a_build_or_a_check(tmp_path):
    out = tmp_path / "out"
    api.build(SPEC_A, ["local"], out)
    manifest = out / "local" / MANIFEST
    good_manifest = manifest.read_bytes()
    manifest.unlink()
    os.mkfifo(manifest)
    assert bounded(SPEC_A, out) == ["DYN508"]
    (check,) = bounded(SPEC_A, out, check=True)
    assert check.startswith(f"{MANIFEST} (")

    manifest.unlink()
    manifest.write_bytes(good_manifest)
    (out / "local" / "launch.sh").unlink()
    os.mkfifo(out / "local" / "launch.sh")
    assert bounded(SPEC_A, out, check=True) == ["launch.sh"]
    assert bounded(SPEC_A, out) == ["DYN502"]  # not a file dyncc wrote: kept, and the build refused

    (out / LOCK).unlink()
    os.mkfifo(out / LOCK)
    assert bounded(SPEC_A, out) == ["DYN507"]
    assert bounded(SPEC_A, out, check=True) == ["DYN507"]
    (out / LOCK).unlink()
    (out / LOCK).symlink_to(tmp_path / "elsewhere")
    assert bounded(SPEC_A, out) == ["DYN507"] and not (tmp_path / "elsewhere").exists()


# --- D-16: unexpected content gives drift or a coded error, no traceback ---------------------------------


def test_check_on_a_non_utf8_or_huge_generated_file_reports_drift(tmp_path):
    out = tmp_path / "out"
    result = api.build(SPEC_A, ["local"], out)
    files = result.outputs[0].files
    assert drift(out / "local", files) == []
    (out / "local" / "launch.sh").write_bytes(b"\xff\xfe")
    (out / "local" / "engine" / "agg.yaml").write_bytes(files["engine/agg.yaml"].encode() + b"x" * 10_000_000)
    assert drift(out / "local", files) == ["engine/agg.yaml", "launch.sh"]


@pytest.mark.parametrize(
    "content",
    [
        b'{"files": [123]}',
        b"not json {",
        b"\xff\xfe\x00",
        b'["launch.sh"]',
        b'{"files": "launch.sh"}',
        b'{"files": ["../../etc/passwd"]}',
        b'{"files": ["/etc/passwd"]}',
    ],
)
def test_a_corrupt_manifest_is_a_coded_error_and_drift(tmp_path, content):
    out = tmp_path / "out"
    result = api.build(SPEC_A, ["local"], out)
    (out / "local" / MANIFEST).write_bytes(content)
    before = snapshot(out)
    with pytest.raises(DiagnosticError) as exc:
        api.build(SPEC_A, ["local"], out)
    assert codes(exc) == ["DYN508"]
    assert snapshot(out) == before
    stale = drift(out / "local", result.outputs[0].files)
    assert len(stale) == 1 and stale[0].startswith(f"{MANIFEST} (")


# --- D-15: read and write errors on the output side say which they are ------------------------------------


def test_write_errors_name_the_path_and_keep_the_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "out"
    api.build(SPEC_A, ["all"], out)
    before = snapshot(out)
    real_write = Path.write_bytes  # what the stager writes every file with

    def disk_full(self, *args, **kwargs):
        if self.name == "job.sbatch":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(DiagnosticError) as exc:
        api.build(SPEC_B, ["all"], out)
    (diagnostic,) = exc.value.diagnostics
    assert diagnostic.code == "DYN505" and "cannot write" in diagnostic.message and "job.sbatch" in diagnostic.message
    assert snapshot(out) == before and leftovers(out) == []


def test_read_errors_on_existing_output_are_reported_as_reads(tmp_path, monkeypatch):
    out = tmp_path / "out"
    api.build(SPEC_A, ["local"], out)
    real_listdir = os.listdir

    def unreadable(path):
        if Path(path).name == "engine":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_listdir(path)

    monkeypatch.setattr(output.os, "listdir", unreadable)
    with pytest.raises(DiagnosticError) as exc:
        api.build(SPEC_A, ["local"], out)
    (diagnostic,) = exc.value.diagnostics
    assert (
        diagnostic.code == "DYN509" and diagnostic.message.startswith("cannot read") and "engine" in diagnostic.message
    )


# --- D-22: init -o never writes through or over anything -------------------------------------------------


def test_write_new_file_refuses_anything_already_there(tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    (tmp_path / "dangling.yaml").symlink_to(elsewhere)
    (tmp_path / "existing.yaml").write_text("mine")
    os.mkfifo(tmp_path / "fifo.yaml")
    for name in ("dangling.yaml", "existing.yaml", "fifo.yaml"):
        with pytest.raises(DiagnosticError) as exc:
            write_new_file(tmp_path / name, "spec\n")
        assert codes(exc) == ["DYN507"], name
    assert not elsewhere.exists() and (tmp_path / "existing.yaml").read_text() == "mine"
    with pytest.raises(DiagnosticError) as exc:
        write_new_file(tmp_path / "no" / "such" / "dir" / "spec.yaml", "spec\n")
    assert codes(exc) == ["DYN505"]
    write_new_file(tmp_path / "new.yaml", "spec\n")
    assert (tmp_path / "new.yaml").read_text() == "spec\n"
    assert (tmp_path / "new.yaml").stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_init_does_not_write_through_a_dangling_symlink(tmp_path):
    """`dyncc init -o` creates its file with O_EXCL|O_NOFOLLOW (via output.write_new_file)."""
    elsewhere = tmp_path / "elsewhere.txt"
    (tmp_path / "new.yaml").symlink_to(elsewhere)
    proc = run_dyncc("init", "-o", tmp_path / "new.yaml")
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "DYN507" in proc.stderr, proc.stderr
    assert not elsewhere.exists()


# --- S2-15: graph -o and schema -o replace a file atomically, never through a link or into a FIFO ---------


def test_replace_file_replaces_a_regular_file_and_refuses_anything_else(tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    (tmp_path / "victim.txt").write_text("precious")
    (tmp_path / "live.mmd").symlink_to(tmp_path / "victim.txt")
    (tmp_path / "dangling.mmd").symlink_to(elsewhere)
    os.mkfifo(tmp_path / "fifo.mmd")
    (tmp_path / "dir.mmd").mkdir()
    for name in ("live.mmd", "dangling.mmd", "fifo.mmd", "dir.mmd"):
        started = time.monotonic()
        with pytest.raises(DiagnosticError) as exc:
            output.replace_file(tmp_path / name, b"graph\n")
        assert codes(exc) == ["DYN507"], name
        assert time.monotonic() - started < 2, name
    assert (tmp_path / "victim.txt").read_text() == "precious" and not elsewhere.exists()
    existing = tmp_path / "existing.mmd"
    existing.write_text("old")
    existing.chmod(0o600)
    output.replace_file(existing, b"new\n")
    assert existing.read_text() == "new\n" and existing.stat().st_mode & 0o777 == 0o600
    output.replace_file(tmp_path / "fresh.mmd", b"x")
    assert (tmp_path / "fresh.mmd").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".dyncc-")) == []  # no temporary left
    with pytest.raises(DiagnosticError) as exc:
        output.replace_file(tmp_path / "no" / "such" / "g.mmd", b"x")
    assert codes(exc) == ["DYN505"]


def test_graph_and_schema_output_never_write_through_a_link(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "apiVersion: dyncc/v1\nname: adv\nmodel: {path: m, moe: false}\npools:\n  agg: {}\n"
    )
    (tmp_path / "victim.txt").write_text("precious")
    (tmp_path / "g.mmd").symlink_to(tmp_path / "victim.txt")
    (tmp_path / "d.json").symlink_to(tmp_path / "elsewhere.json")
    os.mkfifo(tmp_path / "f.mmd")
    for args in (("graph", "s.yaml", "--format", "mermaid", "-o", "g.mmd"), ("schema", "-o", "d.json")):
        proc = run_dyncc(*args, cwd=tmp_path, timeout=20)
        assert_no_traceback(proc)
        assert proc.returncode == 1 and "error DYN507" in proc.stderr, proc.stderr
    proc = run_dyncc("graph", "s.yaml", "-o", "f.mmd", cwd=tmp_path, timeout=20)
    assert proc.returncode == 1 and "error DYN507" in proc.stderr, proc.stderr
    assert (tmp_path / "victim.txt").read_text() == "precious" and not (tmp_path / "elsewhere.json").exists()
    (tmp_path / "schema.json").write_text("old")
    assert run_dyncc("schema", "-o", "schema.json", cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "schema.json").read_text())["title"]
