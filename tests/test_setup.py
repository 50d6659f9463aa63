"""scripts/setup.sh keeps to its venv: run on a throwaway copy of the checkout with Debian's own Python
(externally managed, PEP 668) and pip's PIP_REQUIRE_VIRTUALENV guard, it makes `.venv` there, installs dyncc
into it, and leaves every site-packages directory of the system Python as it found it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SYSTEM_PYTHON = Path("/usr/bin/python3")


def _stdlib(python: Path) -> Path | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 else None


def _externally_managed(python: Path) -> bool:
    stdlib = _stdlib(python)
    return stdlib is not None and (stdlib / "EXTERNALLY-MANAGED").is_file()


def _site_dirs(python: Path) -> list[Path]:
    code = "import site; print('\\n'.join([*site.getsitepackages(), site.getusersitepackages()]))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    return [Path(line) for line in out.stdout.splitlines() if line]


def _fingerprint(python: Path) -> dict[str, str]:
    """Per site-packages directory: a hash of its entries with their modification times, and of what
    `pip list --path` reports there (an install or upgrade changes one or both)."""
    prints = {}
    for site in _site_dirs(python):
        entries = sorted((p.name, p.lstat().st_mtime_ns) for p in site.iterdir()) if site.is_dir() else []
        listed = subprocess.run(
            [python, "-m", "pip", "list", "--path", str(site), "--format", "freeze"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        prints[str(site)] = hashlib.sha256(repr((entries, listed)).encode()).hexdigest()
    return prints


def _checkout_copy(tmp_path: Path) -> Path:
    """What `setup.sh --minimal` reads: the script, the project metadata and the package."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, repo / name)
    shutil.copytree(ROOT / "dyncc", repo / "dyncc", ignore=shutil.ignore_patterns("__pycache__"))
    return repo


def _setup(repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return subprocess.run(
        ["bash", str(repo / "scripts" / "setup.sh"), "--minimal"],
        capture_output=True,
        text=True,
        env={**base, "PIP_REQUIRE_VIRTUALENV": "1", **env},
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not _externally_managed(SYSTEM_PYTHON), reason=f"no externally managed (PEP 668) Python at {SYSTEM_PYTHON}"
)
def test_setup_makes_its_venv_and_leaves_an_externally_managed_python_unchanged(tmp_path):
    before = _fingerprint(SYSTEM_PYTHON)
    assert before, "the system Python's site directories were found (the check can fail)"
    # The guard is live: pip itself refuses to install into this Python.
    refused = subprocess.run(
        [SYSTEM_PYTHON, "-m", "pip", "install", "--dry-run", "--no-index", "dyncc"],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_REQUIRE_VIRTUALENV": "1"},
        timeout=120,
    )
    assert refused.returncode != 0 and ("externally-managed" in refused.stderr or "virtualenv" in refused.stderr)

    repo = _checkout_copy(tmp_path)
    made = _setup(repo, PYTHON=str(SYSTEM_PYTHON))
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"creating the venv {repo / '.venv'} from {SYSTEM_PYTHON}" in made.stdout, made.stdout
    venv_python = repo / ".venv" / "bin" / "python"
    prefixes = subprocess.run(
        [venv_python, "-c", "import sys, dyncc; print(sys.prefix, sys.base_prefix, dyncc.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,  # not the checkout, whose dyncc/ would be imported from the working directory
    ).stdout.split()
    assert prefixes[0] == str(repo / ".venv") and prefixes[1] == "/usr"
    assert prefixes[2] == str(repo / "dyncc" / "__init__.py")  # the editable install of the copy
    assert subprocess.run([repo / ".venv" / "bin" / "dyncc", "--version"], timeout=60).returncode == 0

    # The active venv is used instead (and .venv links to it), again under the guard.
    active = tmp_path / "active"
    subprocess.run([sys.executable, "-m", "venv", active], check=True, timeout=300)
    shutil.rmtree(repo / ".venv")
    again = _setup(repo, VIRTUAL_ENV=str(active))
    assert again.returncode == 0, again.stdout + again.stderr
    assert (repo / ".venv").is_symlink() and (repo / ".venv").resolve() == active.resolve()
    assert (active / "bin" / "dyncc").exists()

    assert _fingerprint(SYSTEM_PYTHON) == before, "setup.sh changed the system Python's site-packages"
