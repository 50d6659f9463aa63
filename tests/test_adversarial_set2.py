"""Every reproducer of the second adversarial review (../shared/adversarial/set2, its README lists them) ends,
within 10 s and 1 GB per dyncc process, in a result or a coded error: never a traceback, an internal error
(exit 3), a hang or a crash; and each shows its defect fixed.

The table below is (defect, reproducer, shell command, expectation). Commands run with bash in a fresh
temporary directory, with `$SET2` the reproducers' folder and `dyncc` (also `$DYNCC`) a wrapper that runs
this checkout's CLI under `ulimit -v` 1 GB and `timeout` 10 s: a reproducer that makes several dyncc calls
is bounded per call, and a call cut off by the wrapper exits 124 (or dies by a signal), which fails here.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, in_ci

SET2 = Path(os.environ.get("DYNCC_ADVERSARIAL_DIR", ROOT.parent / "shared" / "adversarial")) / "set2"
SECONDS = 10
MEMORY_KB = 1024 * 1024
# Sections of a spec `dyncc import` writes; any other top-level key came from somewhere else.
IMPORTED_SECTIONS = {
    "apiVersion", "name", "namespace", "dynamo", "model", "image", "cluster", "router", "migration",
    "planner", "pools", "kv_transfer", "k8s",
}  # fmt: skip

pytestmark = pytest.mark.slow


@dataclasses.dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclasses.dataclass(frozen=True)
class Reproducer:
    defect: str  # S2-nn, as the folder's README numbers them
    name: str
    command: str  # bash, run in a fresh directory
    expect: Callable[[Run], None]
    calls: int = 1  # dyncc calls the command makes at most: its whole run is bounded by calls x SECONDS

    def __str__(self) -> str:
        return f"{self.defect}-{self.name}"


# --- expectations ---------------------------------------------------------------------------------------


def ends_well(run: Run) -> None:
    """No traceback, no internal error, no call cut off; exit 1 only with a coded error."""
    assert "Traceback" not in run.output and "internal error" not in run.output, run.output[-3000:]
    assert not re.search(r"\brc[= ](124|137|3)\b", run.output), run.output[-3000:]
    assert run.returncode in (0, 1, 2), (run.returncode, run.output[-3000:])
    if run.returncode == 1:
        assert "error DYN" in run.output, run.output[-3000:]


def codes(*wanted: str, rc: int = 1) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        ends_well(run)
        assert run.returncode == rc, (run.returncode, run.output[-3000:])
        for code in wanted:
            assert code in run.output, (code, run.output[-3000:])

    return check


def mentions(*wanted: str) -> Callable[[Run], None]:
    """A script's run ends well and its output names each code (the script's own exit status is its last
    command's)."""

    def check(run: Run) -> None:
        ends_well(run)
        for code in wanted:
            assert f"error {code}" in run.output, (code, run.output[-3000:])

    return check


def imported_only_manifest_keys(spec: str, manifest: str) -> Callable[[Run], None]:
    """The imported spec holds the sections the import writes and, below them, only keys the manifest
    names (environment, engine settings): nothing the manifest's text smuggled in as YAML."""

    def check(run: Run) -> None:
        ends_well(run)
        assert run.returncode == 0, run.output[-3000:]
        data = yaml.safe_load((run.cwd / spec).read_text())
        assert set(data) <= IMPORTED_SECTIONS, set(data) - IMPORTED_SECTIONS
        source = (SET2 / manifest).read_text()
        for pool in data.get("pools", {}).values():
            for key in [*pool.get("env", {}), *pool.get("engine", {}).get("extra", {})]:
                assert key in source, key
        assert "0.0.0.0" not in yaml.safe_dump(data), data

    return check


def lines_say(pattern: str, count: int) -> Callable[[Run], None]:
    """A script's report: ``count`` lines match ``pattern`` (one per case it runs)."""

    def check(run: Run) -> None:
        ends_well(run)
        found = re.findall(pattern, run.stdout, re.MULTILINE)
        assert len(found) == count, (pattern, run.stdout[-3000:])

    return check


def all_of(*checks: Callable[[Run], None]) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        for one in checks:
            one(run)

    return check


def lsp_caught_up(run: Run) -> None:
    """lsp_backlog.py: the diagnostics of the last of 200 edits arrive within the per-call limit (197 s
    behind before the server debounced)."""
    ends_well(run)
    said = re.search(r"^diagnostics of the last edit after ([\d.]+) s$", run.stdout, re.MULTILINE)
    assert said and float(said.group(1)) < SECONDS, run.output[-3000:]


def lsp_shows_validate_codes(run: Run) -> None:
    """lsp_misses_target_errors.py: each case's line lists the code `validate` reports."""
    ends_well(run)
    found = re.findall(r"^(DYN\d{3}) expected by `dyncc validate`; lsp.lint gives: (.*)$", run.stdout, re.MULTILINE)
    assert len(found) == 3 and all(code in given for code, given in found), run.stdout[-3000:]


def stderr_says(pattern: str, count: int) -> Callable[[Run], None]:
    """``count`` lines of stderr match ``pattern`` (diagnostics and usage errors go there)."""

    def check(run: Run) -> None:
        ends_well(run)
        assert len(re.findall(pattern, run.stderr, re.MULTILINE)) == count, (pattern, run.output[-3000:])

    return check


def stdout_without_control_characters(run: Run) -> None:
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", run.stdout), repr(run.stdout[-2000:])


# --- the table ------------------------------------------------------------------------------------------

CRASHES = sorted(p.name for p in (SET2 / "import_crashes").glob("*.yaml")) if SET2.is_dir() else []

# estimate_options.sh's spec; its bad option values are run here without its one valid call (a real
# AIConfigurator run, which the per-call limit could cut off and leave its process group running).
ESTIMATE_SPEC = (
    "apiVersion: dyncc/v1\\nname: est\\nmodel: {path: Qwen/Qwen3-32B, moe: false}\\n"
    "cluster: {gpu_type: H100, gpus_per_node: 8, nodes: 1}\\nbenchmark: {isl: 1024, osl: 128, concurrency: [8]}\\n"
    "pools:\\n  agg: {replicas: 1, tensor_parallel: 2, engine: {max_batch_size: 8}}\\n"
)
# S2-17's ../longsweep3.yaml is not in the folder: a spec of the same kind, a long name and a sweep.
LONGSWEEP = "apiVersion: dyncc/v1\\nname: " + "a" * 60 + "\\nmodel: {path: m, moe: false}\\npools: {agg: {}}\\n"
LONGSWEEP += "sweep:\\n  pools.agg.replicas: [1, 2, 3]\\n"

REPRODUCERS: list[Reproducer] = [
    Reproducer(
        "S2-01",
        "import-header-injection",
        'dyncc import "$SET2/import_header_yaml_injection.yaml" -o x.yaml && dyncc validate x.yaml '
        "&& dyncc build x.yaml -t compose -o out",
        imported_only_manifest_keys("x.yaml", "import_header_yaml_injection.yaml"),
        calls=3,
    ),
    Reproducer(
        "S2-01",
        "import-file-name-injection",
        'f="$(printf "a\\nhttp_host: 0.0.0.0\\ncompose: {http_host: 0.0.0.0}\\n.yaml")"; '
        'cp "$SET2/import_header_yaml_injection.yaml" "$f" && dyncc import "$f" -o x.yaml && dyncc validate x.yaml',
        imported_only_manifest_keys("x.yaml", "import_header_yaml_injection.yaml"),
        calls=2,
    ),
    Reproducer("S2-02", "import-alias-bomb", 'dyncc import "$SET2/import_alias_bomb.yaml"', codes("DYN017")),
    *[
        Reproducer(
            "S2-04",
            f"import-crash-{name.removesuffix('.yaml')}",
            f'dyncc import "$SET2/import_crashes/{name}"',
            codes("DYN971", rc=0) if name == "no_model_flag.yaml" else ends_well,
        )
        for name in CRASHES
    ],
    Reproducer(
        "S2-04",
        "import-deep-nesting",
        "python3 -c \"print('['*20000+']'*20000)\" > d.yaml; dyncc import d.yaml",
        codes("DYN012"),
    ),
    Reproducer(
        "S2-05",
        "import-unbounded-read",
        'bash "$SET2/import_unbounded_read.sh"',
        all_of(ends_well, lines_say(r"^fifo rc=1 ", 1), lines_say(r"^20k components rc=1$", 1)),
        calls=3,
    ),
    Reproducer(
        "S2-06",
        "timing-npz-mocker-refuses",
        'python3 "$SET2/timing_npz_accepted_mocker_refuses.py" "$DYNCC"',
        all_of(lines_say(r"^\w+: build rc=1 ", 8), lines_say(r"build rc=[^1]", 0)),
        calls=8,
    ),
    Reproducer(
        "S2-11",
        "timing-npz-crash",
        'python3 "$SET2/timing_npz_crash.py" "$DYNCC"',
        all_of(lines_say(r"^\S+\.npz rc 1 ", 2), lines_say(r" rc [^1]", 0)),
        calls=2,
    ),
    Reproducer(
        "S2-14",
        "import-stdout-escape",
        'dyncc import "$SET2/import_stdout_escape.yaml"',
        all_of(codes(rc=0), stdout_without_control_characters),
    ),
    Reproducer(
        "S2-15",
        "graph-o-symlink-fifo",
        'bash "$SET2/graph_o_writes_through_symlink.sh"',
        all_of(
            mentions("DYN507"),
            lines_say(r"^graph rc=1, victim now: precious$", 1),
            lines_say(r"^schema rc=1, dangling target created: $", 1),
            lines_say(r"^graph -o FIFO rc=1 ", 1),
        ),
        calls=3,
    ),
    Reproducer(
        "S2-03",
        "k8s-patch-copy-amplification",
        'dyncc validate "$SET2/k8s_patch_copy_amplification.yaml"',
        codes("DYN550"),
    ),
    Reproducer(
        "S2-07",
        "k8s-env-secret-literal",
        'dyncc build "$SET2/k8s_env_secret_literal.yaml" -t k8s -o out',
        all_of(codes("DYN113"), stderr_says(r"^\S+:\d+:\d+: error DYN113: env \w+ looks like a secret", 2)),
    ),
    Reproducer(
        "S2-10",
        "k8s-patch-breaks-component",
        'dyncc build "$SET2/k8s_patch_breaks_component.yaml" -t k8s -o out',
        codes("DYN551"),
    ),
    Reproducer(
        "S2-10",
        "k8s-patch-security-silent",
        'dyncc build "$SET2/k8s_patch_security_silent.yaml" -t k8s -o out',
        all_of(
            codes("DYN552"),
            stderr_says(r"error DYN552: .* sets hostNetwork", 1),
            stderr_says(r"error DYN552: .* from image .evil\.example\.com/miner", 1),
        ),
    ),
    Reproducer(
        "S2-12",
        "k8s-annotation-size",
        'bash "$SET2/k8s_annotation_size.sh"',
        all_of(mentions("DYN553"), lines_say(r"^rc=1$", 1)),
    ),
    Reproducer("S2-08", "lsp-backlog", 'python3 "$SET2/lsp_backlog.py" "$DYNCC"', lsp_caught_up),
    Reproducer(
        "S2-09",
        "lsp-target-errors",
        f'PYTHONPATH="{ROOT}" python3 "$SET2/lsp_misses_target_errors.py"',  # it imports this checkout's dyncc
        lsp_shows_validate_codes,
    ),
    Reproducer(
        "S2-13",
        "slurm-option-abbreviations",
        'dyncc build "$SET2/slurm_managed_option_abbrev.yaml" -t slurm -o out',
        all_of(codes("DYN561"), stderr_says(r"^\S+:\d+:\d+: error DYN561: .*an abbreviation of --", 3)),
    ),
    Reproducer(
        "S2-16",
        "sweep-all-points-invalid",
        'f="$SET2/sweep_all_invalid_exit0.yaml"; dyncc validate "$f"; echo "validate rc=$?"; '
        'dyncc sweep "$f" -o s; echo "sweep rc=$?"',
        all_of(mentions("DYN804"), lines_say(r"^validate rc=1$", 1), lines_say(r"^sweep rc=1$", 1)),
        calls=2,
    ),
    Reproducer(
        "S2-17",
        "validate-and-build-all-agree",
        f"printf '{LONGSWEEP}' > longsweep3.yaml; dyncc validate longsweep3.yaml; echo \"validate rc=$?\"; "
        'dyncc build longsweep3.yaml -t all -o out; echo "build rc=$?"',
        all_of(mentions("DYN504"), lines_say(r"^validate rc=1$", 1), lines_say(r"^build rc=1$", 1)),
        calls=2,
    ),
    Reproducer(
        "S2-18",
        "lsp-content-length-lie",
        'python3 "$SET2/lsp_backlog.py" "$DYNCC" --lie',
        all_of(ends_well, lines_say(r"^server exit code: None$", 1)),  # still serving (was exit 3)
    ),
    Reproducer(
        "S2-19",
        "estimate-options",
        f"printf '{ESTIMATE_SPEC}' > s.yaml; "
        'for a in "--isl 0" "--timeout -1" "--mtp-accepted nan"; do dyncc estimate s.yaml $a; echo "rc=$?"; done',
        # usage errors, before the spec is read or AIConfigurator runs
        all_of(lines_say(r"^rc=2$", 3), stderr_says(r"^Error: Invalid value for '--[\w-]+'", 3)),
        calls=3,
    ),
]


@pytest.fixture(autouse=True)
def _needs_the_set2_folder() -> None:
    if not SET2.is_dir():
        reason = f"needs {SET2} (the second set of adversarial reproducers, from the project's shared folder)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


def _bounded_dyncc(directory: Path) -> Path:
    """`dyncc`: this checkout's CLI, each call under 1 GB of address space and 10 s."""
    directory.mkdir()
    wrapper = directory / "dyncc"
    wrapper.write_text(
        "#!/bin/bash\n"
        f"ulimit -v {MEMORY_KB}\n"
        f'PYTHONPATH="{ROOT}" exec timeout -s KILL {SECONDS} "{sys.executable}" -m dyncc "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.parametrize("reproducer", REPRODUCERS or [None], ids=str)
def test_each_set2_reproducer_ends_in_a_result_or_a_coded_error(reproducer: Reproducer, tmp_path: Path) -> None:
    wrapper = _bounded_dyncc(tmp_path / "bin")
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}",
        "DYNCC": str(wrapper),
        "SET2": str(SET2),
        "TMPDIR": str(work),
        "DYNCC_CACHE_DIR": "",
    }
    budget = reproducer.calls * SECONDS + 20  # the calls, and the scripts' own Python around them
    try:
        proc = subprocess.run(
            ["bash", "-c", reproducer.command],
            capture_output=True,
            text=True,
            cwd=work,
            env=env,
            timeout=budget,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{reproducer} ran longer than {budget} s")
    reproducer.expect(Run(proc.returncode, proc.stdout, proc.stderr, work))
