"""Every dyncc module imports on its own, first thing in a fresh interpreter: a circle hidden by the order in
which the suite happens to import modules (k8s/objects -> k8s/__init__'s lazy attribute -> impl -> dgd ->
objects) fails here, not in whichever test file a subset starts with."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPT = """
import importlib, pkgutil, sys
import dyncc
# __main__ modules run the program when imported: they are entry points, not modules to import.
names = sorted(m.name for m in pkgutil.walk_packages(dyncc.__path__, "dyncc.") if not m.name.endswith("__main__"))
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "dyncc" or m.startswith("dyncc.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:  # report every module that fails, not the first
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
print(len(names), "modules", file=sys.stderr)
"""


@pytest.mark.slow
def test_every_module_imports_first_and_alone():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stderr.split()[-2]) > 100  # the walk found the package
    assert proc.stdout.strip() == "", proc.stdout


def test_a_target_submodule_imports_before_its_implementation():
    code = "import dyncc.targets.k8s.objects, dyncc.targets.local.settings, dyncc.targets.slurm.settings"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
