"""Shared test helpers: the CLI in process (`cli`) and as a real process (`run_dyncc`), the reference
files' marker, the hypothesis profiles, the Slurm cluster fixture.

Layers (markers registered in pyproject.toml): the inner loop is
``python3 -m pytest -m "not e2e and not slurm and not slow"``; ``e2e`` starts real Dynamo processes,
``slurm`` needs the Slurm test cluster, ``slow`` is anything over ~5 s (and the tests tests/slow_tests.txt
lists, each measured at 0.5 s or more: the inner loop stays under a minute), ``reference`` needs
``../shared/reference`` (skipped without it, except in CI where that is a failure).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from hypothesis import HealthCheck, settings

# Every diagnostic made in the tests, and in every dyncc process they start, is checked against the code
# registry (dyncc/diagnostics.py, CHECK_CODES): set before dyncc is imported, as the class reads it then.
os.environ["DYNCC_CHECK_CODES"] = "1"

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DYNAMO_05 = ROOT / ".cache" / "dynamo-0.5.1" / "bin" / "python"  # ai-dynamo 0.5.1's venv (scripts/setup.sh)


def parse_with_dynamo_0_5_1(items: list[dict]) -> list[dict]:
    """Command lines checked by ai-dynamo 0.5.1's own parsers, in its venv (tests/dynamo05_parsers.py):
    each item {"kind": "frontend"|"trtllm", "argv": [...]} gives {"ok", "error", and the parsed fields}."""
    import json

    assert DYNAMO_05.exists(), "scripts/setup.sh creates .cache/dynamo-0.5.1"
    proc = subprocess.run(
        [DYNAMO_05, Path(__file__).parent / "dynamo05_parsers.py"],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    parsed: list[dict] = json.loads(proc.stdout)
    return parsed


def release_wheels(version: str, needed_for: str) -> Path:
    """The unpacked ai-dynamo and ai-dynamo-runtime wheels of ``version`` (scripts/setup.sh fetches them, through
    scripts/release_flags.py). Without them the test is skipped here and fails in CI, which must run the real
    release (``needed_for`` says for what)."""
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    from release_flags import unpacked, wheels_for

    if wheels_for(version) is None:
        reason = f"the ai-dynamo {version} wheels are not in .cache/wheels/ (scripts/setup.sh downloads them)"
        if in_ci():
            pytest.fail(f"CI must {needed_for}: {reason}", pytrace=False)
        pytest.skip(reason)
    tree: Path = unpacked(version)
    return tree


VALID_EXAMPLES = sorted(EXAMPLES.glob("*.yaml"))
INVALID_EXAMPLES = sorted((EXAMPLES / "invalid").glob("*.yaml"))
MULTI_NODE_EXAMPLES = {"wide_ep.yaml", "slurm_site.yaml", "gb200_wide_ep_recipe.yaml"}
SINGLE_NODE_EXAMPLES = [p for p in VALID_EXAMPLES if p.name not in MULTI_NODE_EXAMPLES]


# The tests start the tools of the environment that runs them, active or not (`.venv/bin/python -m pytest`):
# `python3` in launch scripts, Slurm jobs and reproducers, `dyncc`, `ruff` resolve to sys.executable's
# directory first, never to whatever Python happens to be first on PATH.
_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = os.pathsep.join([_BIN, *filter(None, [os.environ.get("PATH")])])


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


# --- the CLI: as a real process, and in process ---------------------------------------------------


class CliOutcome(Protocol):
    """What both ways of running the CLI return (subprocess.CompletedProcess has these too)."""

    returncode: int
    stdout: str
    stderr: str


def run_dyncc(*args: object, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real CLI in a fresh interpreter, as a user or CI would run it: for what only a process shows
    (exit status of the interpreter, signals, environment, a traceback printed by Python itself)."""
    return subprocess.run(
        [sys.executable, "-m", "dyncc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


@dataclasses.dataclass
class CliResult:
    """`dyncc ARGS` run in process: the same fields as the subprocess.CompletedProcess of `run_dyncc`."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """contextlib.chdir, which Python 3.10 (still supported) lacks."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def cli(*args: object, cwd: Path | None = None) -> CliResult:
    """`dyncc ARGS` in this interpreter through click's CliRunner (~100x cheaper than a process).

    Run from `cwd` (default: the checkout, like `run_dyncc`) so relative paths resolve the same way. An
    exception that escapes the CLI is appended to stderr as the traceback Python would have printed, so
    `assert_no_traceback` catches it here as it would on a real process.
    """
    from click.testing import CliRunner

    from dyncc.cli import main

    argv = [str(a) for a in args]
    with _working_directory(cwd or ROOT):
        result = CliRunner().invoke(main, argv, prog_name="dyncc", catch_exceptions=True)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit) and result.exc_info:
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(*result.exc_info))
    return CliResult(argv, result.exit_code, result.stdout, stderr)


INTERNAL_ERROR = re.compile(r"dyncc: internal error.*?(?:the full trace is in (\S+))?$", re.MULTILINE)


def assert_no_traceback(proc: CliOutcome) -> None:
    """No crash: neither a Python traceback nor the CLI's one-line "internal error" (which keeps the trace
    in a file; shown here, so the failure says where it crashed)."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    crash = INTERNAL_ERROR.search(proc.stderr)
    if crash:
        trace_file = Path(crash.group(1)) if crash.group(1) else None
        trace = trace_file.read_text() if trace_file and trace_file.is_file() else ""
        raise AssertionError(f"{proc.stderr}\n{trace}")


def expected_failure(path: Path) -> tuple[str, int, str | None]:
    """(code, line, target) an invalid example declares: `# expect: CODE`, `# target: T`, `# <-` marker."""
    lines = path.read_text().splitlines()
    match = re.fullmatch(r"# expect: (DYN\d{3})", lines[0])
    assert match, f"{path}: the first line must be `# expect: DYNnnn`"
    code = match.group(1)
    target = next((m.group(1) for l in lines[:3] if (m := re.fullmatch(r"# target: (\w+)", l))), None)
    line = next(i for i, l in enumerate(lines, 1) if f"# <- {code}" in l)
    return code, line, target


@pytest.fixture
def tmp_out(tmp_path: Path) -> Path:
    return tmp_path / "out"


# --- ../shared/reference: real files from the stack, not shipped with the checkout ----------------

# Overridable so the suite can be run (and its skips tested) with the reference somewhere else or absent.
REFERENCE = Path(os.environ.get("DYNCC_REFERENCE_DIR") or ROOT.parent / "shared" / "reference")

# What each reference entry is, for the skip reason.
REFERENCE_ENTRIES = {
    "nvidia.com_dynamographdeployments.yaml": "the DGD CRD",
    "dynamo-examples/deploy": "Dynamo 1.6's own example manifests",
    "dynamo-2025-examples/deploy": "the 2025 Dynamo example manifests",
    "trtllm-1.3.0rc2x-llm-args-keys.json": "TRT-LLM 1.3's accepted engine keys",
}


def missing_reference(*entries: str) -> str | None:
    """Why a test that needs these entries of REFERENCE cannot run here, or None when it can."""
    missing = [e for e in entries or REFERENCE_ENTRIES if not (REFERENCE / e).exists()]
    if not missing:
        return None
    what = ", ".join(f"{e} ({REFERENCE_ENTRIES.get(e, 'a reference file')})" for e in missing)
    return (
        f"needs {REFERENCE}: {what}, from the project's shared folder (../shared/reference beside the "
        "checkout, or set DYNCC_REFERENCE_DIR)"
    )


# Modules whose tests start launch scripts or hold ports without being `e2e` (fake workers, taken-port
# checks): under xdist they join the e2e and Slurm tests in the `deployments` group.
DEPLOYING_MODULES = {"test_faults", "test_hardening_up"}


# Tests measured at 0.5 s or more: the full suite runs them, the inner loop does not (tests/slow_tests.txt).
SLOW_TESTS = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "slow_tests.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


@pytest.hookimpl(tryfirst=True)  # before xdist turns xdist_group markers into its @group node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whatever uses the Slurm cluster is in the `slurm` layer, whether or not its file says so; whatever
    starts deployments (e2e, Slurm, the modules above) is in the `deployments` xdist group, which
    `--dist loadgroup` runs on a single worker, one test at a time: two deployments never run side by side
    (they would meet on etcd/NATS's fixed ports, port 8000, the Slurm cluster)."""
    for item in items:
        if item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if "slurm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slurm)
        module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
        if item.get_closest_marker("e2e") or item.get_closest_marker("slurm") or module in DEPLOYING_MODULES:
            item.add_marker(pytest.mark.xdist_group("deployments"))


def pytest_configure(config: pytest.Config) -> None:
    """Bring dyncc's bytecode up to date once, before any worker starts. The suite starts dyncc in many
    child processes (the CLI, the language server, the signal tests' builds); where no current bytecode is
    on disk (a module just edited, or PYTHONDONTWRITEBYTECODE, which these machines set) each of them would
    compile the package again, ~0.3 s apiece. Only changed modules are compiled."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller did it
        return
    import compileall

    compileall.compile_dir(ROOT / "dyncc", quiet=2)


def _signal_state() -> tuple[object, ...]:
    import signal

    handlers = tuple(signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD))
    return (*handlers, tuple(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, []))))


@pytest.fixture(autouse=True)
def _signals_left_as_found() -> Iterator[None]:
    """No test may leave the test process's signal handlers or mask changed: every process started after
    it would inherit the change (an ignored or blocked Ctrl-C), and a later test would fail for it."""
    before = _signal_state()
    yield
    assert _signal_state() == before, "this test left the process's signal handling changed"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.reference("entry", ...)`: skip without those files; in CI (CI=true), fail instead,
    because there a skip would let the checks against the real stack silently stop running."""
    marker = item.get_closest_marker("reference")
    if marker is None:
        return
    reason = missing_reference(*marker.args)
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI must run every reference test: {reason}", pytrace=False)
    pytest.skip(reason)


# --- hypothesis: the same cases on every run, unless exploring ------------------------------------

# `deterministic` (the default): derandomized, no example database, so a run fails only for a real defect
# and fails the same way every time. `explore` (benchmarks/fuzz.sh): new random cases each run, and the
# failures it finds are kept in .hypothesis/ to replay. Pick with DYNCC_HYPOTHESIS_PROFILE. (Not named
# `ci`: hypothesis has a built-in profile of that name.)
settings.register_profile(
    "deterministic",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
settings.register_profile(
    "explore", derandomize=False, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True
)
settings.load_profile(os.environ.get("DYNCC_HYPOTHESIS_PROFILE", "deterministic"))

# Filled by tests/test_fuzz.py; reported at the end of every run that fuzzed.
FUZZ_STATS = {"cases": 0, "built": 0, "rejected": 0, "failed": 0}


# Filled by tests/test_starts.py ("valid means it starts"); reported at the end of every run that made specs.
STARTS_STATS = {"generated": 0, "valid": 0, "command_lines": 0, "started": 0}


RUN_STATS = {"fuzz": FUZZ_STATS, "starts": STARTS_STATS}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its counts to the controller, which prints the summary: the counters are
    per process, and without this a run under -n (the default) printed none."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["dyncc_run_stats"] = {name: dict(stats) for name, stats in RUN_STATS.items()}


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist has no such hook to check against
def pytest_testnodedown(node, error) -> None:
    for name, counts in getattr(node, "workeroutput", {}).get("dyncc_run_stats", {}).items():
        for key, value in counts.items():
            RUN_STATS[name][key] += value


def pytest_terminal_summary(terminalreporter) -> None:
    if STARTS_STATS["generated"]:
        terminalreporter.write_line(
            f"starts: {STARTS_STATS['generated']} specs generated, {STARTS_STATS['valid']} valid, "
            f"{STARTS_STATS['command_lines']} command lines passed Dynamo 1.6.1's parsers and start-up checks, "
            f"{STARTS_STATS['started']} started for real (dyncc up --smoke)"
        )
    if FUZZ_STATS["cases"]:
        terminalreporter.write_line(
            f"fuzz: {FUZZ_STATS['cases']} cases run ({FUZZ_STATS['built']} built, {FUZZ_STATS['rejected']} rejected "
            f"with coded errors), {FUZZ_STATS['failed']} failed (hypothesis profile {settings.get_current_profile_name()})"
        )


# --- real processes: ports, tools, Slurm ----------------------------------------------------------


def free_port_block(size: int, host: str = "127.0.0.1") -> int:
    """A base port with `size` free ports after it, at or below 32767 (Dynamo's DYN_SYSTEM_PORT is an i16)."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20000, 32767 - size)
        free = True
        for port in range(base, base + size):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((host, port))
                except OSError:
                    free = False
        if free:
            return base
    raise RuntimeError("no block of free ports")


SLURM_CLUSTER = ROOT / "scripts" / "slurm" / "test-cluster.sh"


class StartedDeployment(Protocol):
    script: Path
    lines: list[str]


def startup_report(deployment: StartedDeployment, tail: int = 15) -> str:
    """What a deployment that did not become ready printed, then the last lines of each process's log:
    a chance failure in CI must explain itself from its output alone."""
    parts = ["\n".join(deployment.lines)]
    for log in sorted((deployment.script.parent / "run" / "logs").glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-tail:]
        parts.append(f"--- {log.name} (last {len(lines)} lines)\n" + "\n".join(lines))
    return "\n".join(parts)


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """Every live process's pid and the fields of /proc/PID/stat after its name (state, ppid, pgrp, ...)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited while we looked
            continue
        yield int(stat.parent.name), fields


def sh(*args: object, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, cwd=cwd, timeout=timeout)


@dataclasses.dataclass(frozen=True)
class SlurmCluster:
    """A private Slurm test cluster (scripts/slurm/test-cluster.sh): everything it has is under `root`."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def pyxis_records(self) -> Path:
        """Where the pyxis stub records each job's container imports (<job>.log)."""
        return self.root / "pyxis"


def start_slurm_cluster(root: Path, nodes: int | None = None, owner: int | None = None) -> SlurmCluster:
    """A private cluster in `root` (new or empty; see test-cluster.sh for where it may be), stopped by
    stop_slurm_cluster or, should its owner (default: this process) die first, by the script's watchdog."""
    env = {**os.environ, **({"DYNCC_SLURM_NODES": str(nodes)} if nodes else {})}
    proc = subprocess.run(
        ["bash", str(SLURM_CLUSTER), "start", str(root), str(owner or os.getpid())],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    if proc.returncode != 0:
        sh("bash", SLURM_CLUSTER, "stop", root, timeout=120)
        raise AssertionError(f"the Slurm test cluster did not start:\n{proc.stdout}{proc.stderr}")
    return SlurmCluster(root)


def stop_slurm_cluster(cluster: SlurmCluster) -> None:
    proc = sh("bash", SLURM_CLUSTER, "stop", cluster.root, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """A real Slurm of this session's own (munged, slurmctld, ten fake 8-GPU nodes; config, state, munge
    socket and ports all private, under a temporary directory), stopped at the session's end, so no job or
    daemon outlives the suite and no other Slurm on the machine is touched. SLURM_CONF names it for the
    session, so every sbatch, squeue or scancel a test runs reaches this cluster and no other."""
    if shutil.which("slurmctld") is None or os.geteuid() != 0:
        pytest.fail("Slurm (slurm-wlm) and root are needed: run scripts/setup.sh as root")
    import tempfile

    # Not under pytest's 0700 basetemp: munged wants every directory above its socket searchable by all.
    root = Path(tempfile.mkdtemp(prefix="dyncc-slurm-"))
    cluster = start_slurm_cluster(root)
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        stop_slurm_cluster(cluster)
        shutil.rmtree(root, ignore_errors=True)
