from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
VALID_EXAMPLES = sorted(EXAMPLES.glob("*.yaml"))
INVALID_EXAMPLES = sorted((EXAMPLES / "invalid").glob("*.yaml"))
MULTI_NODE_EXAMPLES = {"wide_ep.yaml"}
SINGLE_NODE_EXAMPLES = [p for p in VALID_EXAMPLES if p.name not in MULTI_NODE_EXAMPLES]
REFERENCE = ROOT.parent / "shared" / "reference"


def run_dyncc(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real CLI in a fresh interpreter, as a user or CI would run it."""
    return subprocess.run(
        [sys.executable, "-m", "dyncc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


def expected_failure(path: Path) -> tuple[str, int, str | None]:
    """(code, line, target) an invalid example declares: `# expect: CODE`, `# target: T`, `# <-` marker."""
    lines = path.read_text().splitlines()
    code = re.fullmatch(r"# expect: (DYN\d{3})", lines[0]).group(1)
    target = next((m.group(1) for l in lines[:3] if (m := re.fullmatch(r"# target: (\w+)", l))), None)
    line = next(i for i, l in enumerate(lines, 1) if f"# <- {code}" in l)
    return code, line, target


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


@pytest.fixture
def tmp_out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


# Filled by tests/test_fuzz.py; reported at the end of every run that fuzzed.
FUZZ_STATS = {"cases": 0, "built": 0, "rejected": 0, "failed": 0}


def pytest_terminal_summary(terminalreporter):
    if FUZZ_STATS["cases"]:
        terminalreporter.write_line(
            f"fuzz: {FUZZ_STATS['cases']} cases run ({FUZZ_STATS['built']} built, {FUZZ_STATS['rejected']} rejected "
            f"with coded errors), {FUZZ_STATS['failed']} failed"
        )


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


def sh(*args, cwd=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="session")
def slurm():
    """A real Slurm on this machine (slurmctld, munge, six fake 8-GPU nodes), started clean once per
    session and stopped at its end, so no job or daemon outlives the suite."""
    if shutil.which("slurmctld") is None or os.geteuid() != 0:
        pytest.fail("Slurm (slurm-wlm) and root are needed: run scripts/setup.sh as root")
    proc = sh("bash", SLURM_CLUSTER, "start", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield
    sh("bash", SLURM_CLUSTER, "stop", timeout=60)
