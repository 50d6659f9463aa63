"""The pre-commit hooks of .pre-commit-hooks.yaml, run by the real `pre-commit` in a temporary git repository.

pre-commit only sees a hook repository's committed HEAD, so the working tree (what is being tested, not
what was last committed) is copied into a temporary repository and committed there first. pre-commit
then pip-installs dyncc from it (`language: python`) into an environment under a temporary
PRE_COMMIT_HOME: the install a user's first run does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pre-commit") is None, reason="pre-commit is not installed (the dev extra)"),
]

GIT_ID = ["-c", "user.name=dyncc-test", "-c", "user.email=test@dyncc.invalid", "-c", "commit.gpgsign=false"]
INSTALL_TIMEOUT = 600  # the first run pip-installs dyncc and its dependencies


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *GIT_ID, *args], cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _working_tree_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: the working tree as it would be committed."""
    out = _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [name for name in out.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dyncc's working tree, committed in a repository of its own."""
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout: its working tree cannot be listed")
    repo = tmp_path_factory.mktemp("dyncc-hooks")
    for name in _working_tree_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "working tree")
    return repo


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One pre-commit home for the module (its hook environments are reused between the tests)."""
    home = tmp_path_factory.mktemp("pre-commit-home")
    return {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """A user's repository with a valid and an invalid spec, and a YAML file that is not a spec."""
    repo = tmp_path / "user"
    (repo / "deploy").mkdir(parents=True)
    shutil.copy(EXAMPLES / "agg.yaml", repo / "deploy" / "good.dyncc.yaml")
    bad = (EXAMPLES / "agg.yaml").read_text().replace("tensor_parallel: 1", "tensor_parallel: 9")
    (repo / "deploy" / "bad.dyncc.yaml").write_text(bad)
    (repo / "deploy" / "other.yaml").write_text("kind: ConfigMap\n")  # not matched by the default `files:`
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "specs")
    return repo


def _pre_commit(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pre-commit", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
    )


def test_validate_hook_passes_a_valid_spec_and_fails_an_invalid_one(hook_repo, user_repo, env):
    good = _pre_commit(
        user_repo, env, "try-repo", str(hook_repo), "dyncc-validate", "--files", "deploy/good.dyncc.yaml"
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "dyncc validate" in good.stdout and "Passed" in good.stdout

    every = _pre_commit(user_repo, env, "try-repo", str(hook_repo), "dyncc-validate", "--all-files")
    output = every.stdout + every.stderr
    assert every.returncode == 1, output
    assert "Failed" in output
    assert "deploy/bad.dyncc.yaml:17:22: error DYN404" in output
    assert "deploy/good.dyncc.yaml: valid" in output
    assert "other.yaml" not in output  # the default pattern leaves other YAML alone


def test_build_check_hook_fails_on_stale_output(hook_repo, user_repo, env):
    """`dyncc-build-check` with the spec and output directory as args: passes on fresh output, fails on an edit."""
    head = _git(hook_repo, "rev-parse", "HEAD").strip()
    (user_repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {head}\n    hooks:\n      - id: dyncc-build-check\n"
        "        args: [deploy/good.dyncc.yaml, -o, deploy/build, -t, k8s]\n"
    )
    built = subprocess.run(  # the checkout's dyncc: the one the hook environment installs
        [sys.executable, "-m", "dyncc", "build", "deploy/good.dyncc.yaml", "-o", "deploy/build", "-t", "k8s"],
        cwd=user_repo,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert built.returncode == 0, built.stderr
    _git(user_repo, "add", "-A")
    fresh = _pre_commit(user_repo, env, "run", "dyncc-build-check", "--all-files")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr

    manifest = next((user_repo / "deploy" / "build" / "k8s").glob("*.yaml"))
    manifest.write_text(manifest.read_text() + "# edited by hand\n")
    stale = _pre_commit(user_repo, env, "run", "dyncc-build-check", "--all-files")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert f"drift: deploy/build/k8s/{manifest.name}" in stale.stdout
