"""Every reproducer of the adversarial review (../shared/adversarial) ends, within 10 s and 1 GB per dyncc
process, in a correct result or a coded error: never a traceback, an internal error, a hang or a crash.

Each spec is validated and, when valid, built for every target; sweep specs are also expanded; the shell
reproducers (repro.sh) run whole. The limits are the kernel's (RLIMIT_AS) and the test's clock.
"""

from __future__ import annotations

import os
import resource
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, in_ci

ADVERSARIAL = Path(os.environ.get("DYNCC_ADVERSARIAL_DIR", ROOT.parent / "shared" / "adversarial"))
# Without the folder, one placeholder case, which the fixture below skips saying what is missing (an empty
# parameter list would be skipped with only pytest's "got empty parameter set").
SPECS: list = (
    sorted(ADVERSARIAL.glob("specs/**/*.yaml"))
    if ADVERSARIAL.is_dir()
    else [pytest.param(None, id="adversarial-folder-missing")]
)
REPRODUCERS = [
    "user_file_deleted",
    "symlink_target",
    "check_non_utf8",
    "manifest_corrupt",
    "dev_zero",
    "long_model_path_json",
    "dense_4mb",
    "timeout_inf",
    "fifo_manifest",
    "tmp_prefix_squat",
    "init_dangling_symlink",
    "relative_model_path",
]
SECONDS = 10
MEMORY = 1024**3

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _needs_the_adversarial_folder() -> None:
    if not ADVERSARIAL.is_dir():
        reason = f"needs {ADVERSARIAL} (the adversarial reproducers, from the project's shared folder)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _dyncc(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, "-m", "dyncc", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=SECONDS,
            preexec_fn=_limited,
            env={**os.environ, "PYTHONPATH": str(ROOT), "DYNCC_CACHE_DIR": ""},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"dyncc {' '.join(map(str, args))} ran longer than {SECONDS} s")


def _ends_well(proc: subprocess.CompletedProcess) -> None:
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "internal error" not in output, output[-2000:]
    assert proc.returncode in (0, 1, 2), (proc.returncode, output[-2000:])
    if proc.returncode == 1:
        assert "error DYN" in output or '"code": "DYN' in output, output[-2000:]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: str(p.relative_to(ADVERSARIAL / "specs")))
def test_each_adversarial_spec_ends_in_a_result_or_a_coded_error(spec: Path, tmp_path: Path) -> None:
    checked = _dyncc("validate", spec, cwd=tmp_path)
    _ends_well(checked)
    if checked.returncode == 0:
        _ends_well(_dyncc("build", spec, "-t", "all", "-o", tmp_path / "out", cwd=tmp_path))
    if "sweep" in spec.name:
        _ends_well(_dyncc("sweep", spec, "-o", tmp_path / "sweep", cwd=tmp_path))


@pytest.mark.parametrize("name", REPRODUCERS)
def test_each_shell_reproducer_ends_in_a_result_or_a_coded_error(name: str, tmp_path: Path) -> None:
    dyncc = f"{shlex.quote(sys.executable)} -m dyncc"
    env = {**os.environ, "DYNCC": dyncc, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    try:
        proc = subprocess.run(
            ["bash", str(ADVERSARIAL / "repro.sh"), name],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=6 * SECONDS,  # a reproducer makes up to six dyncc calls
            preexec_fn=_limited,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"repro.sh {name} ran longer than {6 * SECONDS} s")
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "internal error" not in output, output[-2000:]
    assert "rc=124" not in output, output[-2000:]  # repro.sh's own `timeout` fired: dyncc hung
