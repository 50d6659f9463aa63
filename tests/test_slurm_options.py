"""Site option lines (`slurm.extra_sbatch`, `slurm.srun_options`) against the installed sbatch and srun:
dyncc's lists of their options are the commands' own, and DYN561 refuses exactly the spellings Slurm reads
as an option dyncc writes itself, getopt abbreviations included (`--outp` is `--output`), or refuses as
ambiguous (`--nod`: `--nodefile`, `--nodelist`, `--nodes`).

The commands only parse their options here: a private slurm.conf names a controller port nothing listens
on, `--test-only` submits nothing, and each probe is stopped once it has printed what it parsed."""

from __future__ import annotations

import re
import shutil
import string
import subprocess
from pathlib import Path

import pytest
from conftest import free_port_block

from dyncc.targets.slurm.impl import MANAGED_SBATCH, MANAGED_SRUN, option_problems
from dyncc.targets.slurm.settings import PYXIS_OPTIONS, SBATCH_OPTIONS, SRUN_OPTIONS, managed_option

COMMANDS = {"sbatch": (SBATCH_OPTIONS, MANAGED_SBATCH), "srun": (SRUN_OPTIONS, MANAGED_SRUN)}
# What a probe needs besides the option: sbatch a script, srun a command.
TRAILING = {"sbatch": ["--wrap=true"], "srun": ["true"]}

pytestmark = pytest.mark.skipif(
    shutil.which("sbatch") is None or shutil.which("srun") is None,
    reason="needs Slurm's sbatch and srun (slurm-client, installed by scripts/setup.sh)",
)


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    conf = tmp_path_factory.mktemp("slurm") / "slurm.conf"
    conf.write_text(f"ClusterName=dyncc-probe\nSlurmctldHost=localhost\nSlurmctldPort={free_port_block(1)}\n")
    return {"PATH": "/usr/bin:/bin", "SLURM_CONF": str(conf), "LC_ALL": "C"}


def _stderr(env: dict[str, str], *args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=20).stderr


def _defined_options(env: dict[str, str], command: str, option: str) -> set[str]:
    """The options `command -vv` says it parsed from ``option`` (for flags, which getopt resolves silently)."""
    args = [command, "-vv", "--test-only", option, *TRAILING[command]]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    names: set[str] = set()
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "end of defined options" in line or "error" in line:
                break
            match = re.match(rf"{command}: (\S+)\s+: ", line)
            if match:
                names.add(match.group(1))
    finally:
        proc.kill()
        proc.wait(10)
    return names - {"verbose", "test-only", "wrap"}


def slurm_reads(env: dict[str, str], command: str, spelling: str) -> set[str] | str:
    """The option(s) ``command`` reads ``--spelling`` as, "ambiguous", or "unknown"."""
    first = _stderr(env, command, f"--{spelling}").splitlines()[0]
    if "is ambiguous" in first:
        return "ambiguous"
    if "unrecognized option" in first:
        return "unknown"
    needs_value = re.search(r"option '--([\w-]+)' requires an argument", first)  # getopt names the option
    return {needs_value.group(1)} if needs_value else _defined_options(env, command, f"--{spelling}")


def test_option_lists_are_the_installed_commands(slurm_env: dict[str, str]):
    for command, (options, _) in COMMANDS.items():
        found: set[str] = set()
        for letter in string.ascii_lowercase:
            # `--a` is ambiguous among every option beginning with a: getopt lists them; a letter only one
            # option begins is that option, read as Slurm reads it.
            listed = re.search(r"is ambiguous; possibilities:(.*)", _stderr(slurm_env, command, f"--{letter}"))
            if listed:
                found |= set(re.findall(r"'--([^']+)'", listed.group(1)))
                continue
            reading = slurm_reads(slurm_env, command, letter)
            if reading == set():  # parsed, then stopped before listing it: srun --x11 wants an X display
                said = _stderr(slurm_env, command, "-vv", "--test-only", f"--{letter}", *TRAILING[command])
                reading = {word for word in re.findall(r"[a-z][\w-]+", said) if word.startswith(letter)} & options
            if reading != "unknown":
                assert isinstance(reading, set) and len(reading) == 1, (command, letter, reading)
                found |= reading
        assert found == options, (command, sorted(found ^ options))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_dyn561_refuses_what_slurm_reads_as_a_managed_option(slurm_env: dict[str, str], command: str):
    options, managed = COMMANDS[command]
    # Every prefix of every option dyncc writes itself (pyxis's are not installed here: see the next test).
    spellings = sorted({m[:n] for m in managed if m not in PYXIS_OPTIONS for n in range(1, len(m) + 1)})
    wrong = []
    for spelling in spellings:
        reading = slurm_reads(slurm_env, command, spelling)
        sets_managed = reading == "ambiguous" or (isinstance(reading, set) and bool(reading & managed.keys()))
        meant = managed_option(spelling, options, managed)
        if (meant is not None) != sets_managed or (isinstance(reading, set) and meant and {meant[0]} != reading):
            wrong.append((spelling, reading, meant))
    assert not wrong, wrong
    assert len(spellings) > 80  # the prefixes of a dozen or more option names


def test_abbreviations_are_dyn561_in_the_spec_and_full_site_options_are_not():
    lines = ["--outp=stolen-%j.out", "--job-n=not-adv", "--nod=2", "--mail-type=END", "--mem=64G", "--gres-flags=x"]
    problems = option_problems("extra_sbatch", lines, MANAGED_SBATCH, "#SBATCH", SBATCH_OPTIONS)
    assert [(d.code, d.path[-1]) for d in problems] == [("DYN561", 0), ("DYN561", 1), ("DYN561", 2)]
    assert "--outp, an abbreviation of --output" in problems[0].message
    assert "--nod, which may abbreviate --nodes (or --nodefile, --nodelist" in problems[2].message
    # srun: Slurm's own --container (an OCI bundle) is not pyxis's --container-image; its prefixes are
    # pyxis's too, where pyxis is installed (as dyncc's Slurm jobs need), so they are refused.
    lines = ["--nodeli=node9", "--container=/b", "--container-im=x", "--cpu-bind=none", "--ex"]
    problems = option_problems("srun_options", lines, MANAGED_SRUN, "srun", SRUN_OPTIONS)
    assert [d.path[-1] for d in problems] == [0, 2, 4]
    assert "--container-im, an abbreviation of --container-image" in problems[1].message


def test_the_reproducer_spec_is_refused(tmp_path: Path):
    from conftest import cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: adv\nmodel: {path: Qwen/Qwen3-0.6B, moe: false}\nworker_runtime: mocker\n"
        "pools:\n  agg: {replicas: 1}\nslurm:\n  extra_sbatch: ['--outp=stolen-%j.out', '--job-n=not-adv']\n"
        "  srun_options: ['--nodeli=node9']\n"
    )
    proc = cli("build", spec, "-t", "slurm", "-o", tmp_path / "out")
    assert proc.returncode == 1 and proc.stderr.count("error DYN561") == 3, proc.stderr
    assert not (tmp_path / "out").exists()
