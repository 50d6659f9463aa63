"""A build imports what it uses, nothing more (issue 30): the structural side of benchmarks/run.py.

The time a cold `dyncc build` takes is measured by the benchmark, not here (tests stay deterministic); these
tests hold the fact it rests on: the command line, and a whole `build -t all`, leave the tools over the API
(import, lsp, sla, twin, sweep, ...) and the other commands' modules unimported, so an eager import added
anywhere on the build's path fails a test instead of slowing every build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Modules a build never uses: the tools over the API and the other commands' implementations.
NOT_FOR_A_BUILD = (
    "dyncc.tools",  # every command over the API (import, lsp, sla, sweep, diff, views, migrate, lifecycle, ...)
    "dyncc.aic",  # AIConfigurator's adaptor: only a build timed by it (mocker_timing: aiconfigurator) needs it
    "dyncc.twin",  # the timed twin's timing files, likewise
    "pygls",
)

MODULES_AFTER = """
import json, sys
{statement}
print(json.dumps(sorted(sys.modules)))
"""
BUILD = """
from dyncc.cli import main
try:
    main(["build", {spec!r}, "-t", "all", "-o", {out!r}], standalone_mode=False)
except SystemExit as exc:
    assert not exc.code, exc.code
"""


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statement``."""
    code = MODULES_AFTER.format(statement=statement)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def _unused(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(NOT_FOR_A_BUILD) and m.partition(".")[0] in ("dyncc", "pygls"))


def test_the_command_line_imports_no_tool() -> None:
    modules = _modules_after("import dyncc.cli")
    assert "dyncc.cli" in modules
    assert _unused(modules) == []


@pytest.mark.parametrize("example", ["disagg_router.yaml", "slurm_site.yaml"])
def test_a_build_imports_no_tool(example: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    modules = _modules_after(BUILD.format(spec=str(ROOT / "examples" / example), out=str(out)))
    assert {"k8s", "slurm"} <= {p.name for p in out.iterdir() if p.is_dir()}  # it did build
    assert _unused(modules) == []


def test_the_commands_of_other_modules_are_there_when_named() -> None:
    """The commands built on demand are listed by --help and run like the others."""
    from click.testing import CliRunner

    from dyncc.cli import LAZY_COMMANDS, main

    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0, listing.output
    listed = {line.split()[0] for line in listing.output.split("Commands:")[1].splitlines() if line.strip()}
    assert set(LAZY_COMMANDS) <= listed
    for name in LAZY_COMMANDS:
        shown = runner.invoke(main, [name, "--help"])
        assert shown.exit_code == 0, shown.output
        assert f"Usage: main {name}" in shown.output
    assert "--from-sla" in runner.invoke(main, ["init", "--help"]).output


def test_the_command_line_leaves_the_collector_on() -> None:
    """dyncc.cli pauses the garbage collector while its imports build the spec models; it must turn it back on."""
    code = "import gc; import dyncc.cli; print(gc.isenabled(), gc.get_freeze_count() > 0)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", "True"], done.stderr[-2000:]
