"""The README says what it shows: its two set-up commands are the ones CI runs, and every line of its tour
runs as written from a checkout and exits as its comment says (a comment starting `exit N` expects N;
any other line, 0).

The lines run in order in a scratch directory that holds the examples (the tour writes my-llm.yaml,
build/, imported.yaml, sweep/ and sla.yaml there, never into the checkout). Lines that only run dyncc go
through the CLI in process; `up` (real Dynamo, on free ports), AIConfigurator's two and the language server
run as processes."""

from __future__ import annotations

import glob
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, assert_no_traceback, cli, free_port_block
from dynamo_parsers import DYNAMO_AVAILABLE
from ruamel.yaml import YAML

from dyncc.aic import runner

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.DOTALL)


def _tour() -> list[tuple[str, int]]:
    """(command, expected exit status) per line of the tour."""
    (block,) = _bash_blocks(_section("A tour"))
    lines = []
    for line in block.splitlines():
        command, _, comment = line.partition("  #")
        expected = re.match(r"\s*exit (\d)", comment)
        lines.append((command.strip(), int(expected.group(1)) if expected else 0))
    return lines


TOUR = _tour()
# Lines that need more than dyncc itself, run as processes by their own tests below.
UP, SLA, ESTIMATE, LSP = "dyncc up ", "dyncc init --from-sla ", "dyncc estimate ", "dyncc lsp"
OWN_TESTS = (UP, SLA, ESTIMATE, LSP)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "examples").symlink_to(EXAMPLES)
    return tmp_path


def _in_process(command: str, cwd: Path) -> tuple[int, str]:
    words = shlex.split(command)
    assert words[0] == "dyncc", command
    args = [match for word in words[1:] for match in (sorted(glob.glob(word, root_dir=cwd)) or [word])]
    result = cli(*args, cwd=cwd)
    assert_no_traceback(result)
    return result.returncode, result.stdout + result.stderr


def test_the_set_up_commands_are_two_and_ci_runs_the_same_test_command():
    blocks = [b.strip() for b in _bash_blocks(_section("Set up and test"))]
    assert blocks == [
        "./scripts/setup.sh && .venv/bin/dyncc build examples/disagg_router.yaml -o build",
        ".venv/bin/python -m pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    python = re.search(r"^PY=(\S+)$", ci, re.MULTILINE)
    assert python and f"{python.group(1)} -m pytest" == blocks[1]
    assert '"$PY" -m pytest "$@"' in ci and 'step "pytest" pytest_step\n' in ci
    assert "./scripts/setup.sh ||" in ci  # the first command, without its demo
    assert not re.search(r"^\s*python3? ", ci, re.MULTILINE), "CI runs nothing with the system Python"


def test_the_tour_shows_every_command_family():
    shown = " ".join(command for command, _ in TOUR)
    for words in (
        "dyncc init --template",
        "dyncc validate",
        "--format github",
        "dyncc build",
        "--check",
        "dyncc up",
        "--engine mocker",
        "dyncc explain",
        "dyncc diff",
        "dyncc graph",
        "dyncc import",
        "dyncc migrate",
        "dyncc sweep",
        "dyncc init --from-sla",
        "dyncc estimate",
        "dyncc lsp",
    ):
        assert words in shown, words
    assert len(README.splitlines()) <= 200


def test_the_tour_runs_as_written(scratch):
    ran = 0
    for command, expected in TOUR:
        if command.startswith(OWN_TESTS):
            continue
        status, output = _in_process(command, scratch)
        assert status == expected, f"{command}: exit {status}, README says {expected}\n{output}"
        ran += 1
    assert ran >= 10
    # What the lines say they make is there.
    for made in ("my-llm.yaml", "build/local/launch.sh", "build/k8s/dynamographdeployment.yaml",
                 "build/slurm/job.sbatch", "build/compose/docker-compose.yaml", "imported.yaml", "sweep/index.md"):  # fmt: skip
        assert (scratch / made).exists(), made
    assert cli("validate", "imported.yaml", cwd=scratch).returncode == 0


def test_the_first_commands_demo_builds_with_the_venvs_dyncc(scratch):
    demo = "./scripts/setup.sh && .venv/bin/dyncc build examples/disagg_router.yaml -o build".split(" && ")[1]
    (scratch / ".venv").symlink_to(sys.prefix)  # the environment running the tests stands for the venv
    proc = subprocess.run(shlex.split(demo), cwd=scratch, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (scratch / "build" / "local" / "launch.sh").exists()


def test_the_tours_language_server_starts_and_ends_with_its_input():
    (command,) = [c for c, _ in TOUR if c.startswith(LSP)]
    proc = subprocess.run(shlex.split(command), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_the_tours_up_serves_and_passes_its_smoke_test(scratch):
    ((command, expected),) = [(c, e) for c, e in TOUR if c.startswith(UP)]
    words = shlex.split(command)
    (spec_arg,) = [w for w in words if w.endswith(".yaml")]
    # The example as written, on free ports: other deployments may hold the example's 8000 meanwhile.
    yaml = YAML()
    spec = yaml.load((scratch / spec_arg).read_text())
    base = free_port_block(8)
    spec["local"] = {**(spec.get("local") or {}), "http_port": base, "system_port_base": base + 1}
    copy = scratch / "up.yaml"
    with copy.open("w") as f:
        yaml.dump(spec, f)
    words[words.index(spec_arg)] = str(copy)
    proc = subprocess.run(words, cwd=scratch, capture_output=True, text=True, timeout=300)
    assert proc.returncode == expected, proc.stdout + proc.stderr
    assert "smoke: " in proc.stdout and " 0 failed" in proc.stdout, proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(not runner.VENV_PYTHON.exists(), reason="AIConfigurator venv (.cache/aiconfigurator) missing")
def test_the_tours_sla_spec_is_written_and_estimated(scratch):
    for prefix in (SLA, ESTIMATE):
        ((command, expected),) = [(c, e) for c, e in TOUR if c.startswith(prefix)]
        proc = subprocess.run(shlex.split(command), cwd=scratch, capture_output=True, text=True, timeout=900)
        assert proc.returncode == expected, f"{command}\n{proc.stdout}{proc.stderr}"
        assert_no_traceback(proc)
    assert cli("validate", "sla.yaml", cwd=scratch).returncode == 0
    assert "TTFT" in proc.stdout and "tokens/s/GPU" in proc.stdout
