"""dyncc's performance, measured the way users meet it: cold, whole processes.

    python3 benchmarks/run.py [--runs 7] [--out benchmarks/results.md] [--cold-only] [--instructions]

1. Cold wall time (median of --runs) and peak RSS of `dyncc validate` and `dyncc build -t all` per
   example, side by side with the library-import floor: runs are interleaved (floor, build, validate,
   floor, build, validate, ...) so the load other processes put on the machine falls on both alike.
   The floor is a fresh interpreter importing every third-party package a build imports, as far as a
   build uses it (FLOOR_IMPORTS: `from pydantic import BaseModel`, because `import pydantic` alone
   defers nearly all of pydantic to first use; annotated_types, which pydantic imports for field
   constraints; PyYAML, which writes the generated YAML; packaging's version parser). The benchmark
   checks that list against what a build imports and says so when they differ. The floor of earlier
   results (`import pydantic, networkx, jinja2, ruamel.yaml, click`) is measured and shown too.
2. Scaling: generated specs of about 10, 100, 1,000 and 10,000 GPUs — validate + compile + render
   (k8s and slurm) in one fresh process each: wall time, peak RSS, and growth per doubling.
3. `dyncc validate --format json` on all examples in one process: time per spec.
4. Where the time of one build goes: each library's import alone, and dyncc's phases in process.

--cold-only stops after 1 (a quick check of the floor ratio); --instructions adds instruction counts
(valgrind) of the floor and one build: deterministic, so they compare runs on a busy machine.

dyncc is measured as installed: its modules byte-compiled first (pip does that for a wheel) and the
template cache filled by the first run, as it is after any earlier build on the machine; the build
with an empty template cache is reported too. Peak RSS is the child's own ru_maxrss (os.wait4).
Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import compileall
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# The third-party libraries a build uses, imported as far as a build uses them (see the module doc).
FLOOR_LIBRARIES = (
    "annotated_types",
    "click",
    "jinja2",
    "msgspec",
    "networkx",
    "packaging.version",
    "pydantic",
    "ruamel.yaml",
    "yaml",
)
# `import pydantic` alone defers nearly all of pydantic to first use; a build's first use is BaseModel.
FLOOR_STATEMENTS = tuple(
    "from pydantic import BaseModel" if n == "pydantic" else f"import {n}" for n in FLOOR_LIBRARIES
)
FLOOR_IMPORTS = "; ".join(FLOOR_STATEMENTS)
LEGACY_FLOOR_IMPORTS = "import pydantic, networkx, jinja2, ruamel.yaml, click"  # the floor of earlier results
# The top-level third-party packages (not dyncc, not the standard library) imported by the statement in argv[1].
THIRD_PARTY = """
import contextlib, io, sys, sysconfig
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    exec(sys.argv[1])
site = sysconfig.get_paths()["purelib"]
print(" ".join(sorted({name.split(".")[0] for name, module in list(sys.modules.items())
    if (getattr(module, "__file__", None) or "").startswith(site) and not name.startswith(("dyncc", "_"))})))
"""
BUILD_STATEMENT = """
import sys, tempfile
from dyncc.cli import main
try:
    main(["build", {spec!r}, "-t", "all", "-o", tempfile.mkdtemp()], standalone_mode=False)
except SystemExit:
    pass
"""
# One build of disagg_router.yaml, timed phase by phase in one process.
PHASES = """
import time, tempfile
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import click; mark("import click")
import networkx; mark("import networkx")
import pydantic, ruamel.yaml, yaml; from pydantic import BaseModel; mark("import pydantic, ruamel.yaml, PyYAML")
import dyncc.api; mark("import dyncc (spec models, compiler)")
from dyncc.deployment import load_spec; loaded = load_spec("examples/disagg_router.yaml"); mark("load + validate spec")
from dyncc.compiler import compile_spec; compilation = compile_spec(loaded); mark("graph, rules, placement, plan")
rendered, _ = dyncc.api.render_targets(compilation, ["all"]); mark("render every target (imports jinja2)")
from pathlib import Path; from dyncc.output import write_tree; out = Path(tempfile.mkdtemp())
for name, files in rendered.items(): write_tree(out / name, files)
mark("write files")
print(";".join(f"{b[0]}={(b[1] - a[1]) * 1000:.1f}" for a, b in zip(marks, marks[1:])))
"""


def run_once(argv: list[str], cwd: Path = ROOT, env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one cold run of argv."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{argv} exited {proc.returncode}")
    return seconds, usage.ru_maxrss / 1024


def measure(argv: list[str], runs: int, cwd: Path = ROOT, env: dict | None = None) -> tuple[float, float]:
    """Median wall seconds and max peak RSS (MiB) of `runs` cold runs of argv."""
    samples = [run_once(argv, cwd, env) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


def interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    """Median wall seconds and max peak RSS of each command, run in turn `runs` times (one of each per round),
    so a burst of load from other processes falls on all of them rather than on whichever ran then."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(run_once(argv))
    return {name: (statistics.median(t for t, _ in got), max(m for _, m in got)) for name, got in samples.items()}


def instructions(argv: list[str]) -> int | None:
    """Instructions one run executes (valgrind), None without valgrind: the same on a busy machine as on an idle one."""
    if shutil.which("valgrind") is None:
        return None
    tool = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(tool + argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    return int(found.group(1).replace(",", "")) if found else None


def third_party_imports(statement: str) -> set[str]:
    """The top-level third-party packages a fresh interpreter imports to run statement."""
    done = subprocess.run([PY, "-c", THIRD_PARTY, statement], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def scaled_spec(gpus: int) -> str:
    """A disaggregated deployment of `gpus` GPUs on 8-GPU nodes: half prefill (TP4), half decode
    (TP16 workers spanning two nodes, attention DP) — many replicas and large multi-node workers."""
    nodes = gpus // 8
    decode_tp = 16 if gpus >= 32 else 4
    prefill_replicas = gpus // 2 // 4
    decode_replicas = gpus // 2 // decode_tp
    return f"""apiVersion: dyncc/v1
name: scale-{gpus}
model: {{path: deepseek-ai/DeepSeek-R1, moe: true, num_experts: 256}}
cluster: {{gpus_per_node: 8, nodes: {nodes}}}
router: {{mode: kv}}
kv_transfer: {{backend: NIXL}}
local: {{system_port_base: 2000}}
pools:
  prefill: {{replicas: {prefill_replicas}, tensor_parallel: 4, expert_parallel: 4}}
  decode: {{replicas: {decode_replicas}, tensor_parallel: {decode_tp}, expert_parallel: {decode_tp}, attention_dp: true}}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.md")
    parser.add_argument("--cold-only", action="store_true", help="Only the cold runs against the floor.")
    parser.add_argument("--instructions", action="store_true", help="Add valgrind instruction counts.")
    args = parser.parse_args()
    runs = args.runs
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    out: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="dyncc-bench-"))
    compileall.compile_dir(str(ROOT / "dyncc"), quiet=1)

    cold, floor = cold_runs(examples, runs, tmp, args.instructions)
    out += cold
    if args.cold_only:
        finish(out, runs, args.out)
        return

    example = ROOT / "examples" / "disagg_router.yaml"
    cold_cache = []
    for run in range(runs):
        env = dict(os.environ, DYNCC_CACHE_DIR=str(tmp / f"empty-cache-{run}"))
        cold_cache.append(
            measure([PY, "-m", "dyncc", "build", str(example), "-t", "all", "-o", str(tmp / "cc")], 1, env=env)[0]
        )
    out += [
        "",
        f"disagg_router.yaml, build -t all with an empty template cache (a machine's first build): "
        f"{statistics.median(cold_cache) * 1000:.0f} ms ({statistics.median(cold_cache) / floor:.2f} x floor).",
        "",
    ]

    out += [
        "## `dyncc validate --format json` on all examples in one process",
        "",
        "| specs | in one process ms | per spec, start-up included | per additional spec |",
        "| --- | --- | --- | --- |",
    ]
    one, _ = measure([PY, "-m", "dyncc", "validate", "--format", "json", str(examples[0])], runs)
    everything = examples + sorted((ROOT / "examples" / "invalid").glob("*.yaml"))
    for label, specs in (
        (f"the {len(examples)} valid examples", examples),
        (f"all {len(everything)} (with examples/invalid/, one error each)", everything),
    ):
        many, _ = measure([PY, "-m", "dyncc", "validate", "--format", "json", *map(str, specs)], runs)
        out.append(
            f"| {label} | {many * 1000:.0f} | **{many / len(specs) * 1000:.1f} ms** | "
            f"{(many - one) / (len(specs) - 1) * 1000:.1f} ms |"
        )
    out.append("")

    out += [
        "## Scaling (validate + compile + render k8s and slurm, one cold process each)",
        "",
        "| GPUs | workers | wall ms | peak MiB | time ratio per doubling |",
        "| --- | --- | --- | --- | --- |",
    ]
    previous = None
    for gpus in (8, 128, 1024, 10240):
        spec = tmp / f"scale-{gpus}.yaml"
        spec.write_text(scaled_spec(gpus))
        t, rss = measure(
            [PY, "-m", "dyncc", "build", str(spec), "-t", "k8s", "-t", "slurm", "-o", str(tmp / f"s{gpus}")], runs
        )
        workers = gpus // 8 + gpus // 2 // (16 if gpus >= 32 else 4)
        ratio = ""
        if previous:
            doublings = math.log2(gpus / previous[0])
            ratio = f"{(t / previous[1]) ** (1 / doublings):.2f}"
        out.append(f"| {gpus} | {workers} | {t * 1000:.0f} | {rss:.0f} | {ratio} |")
        previous = (gpus, t)
    # The 10k-GPU figure without process start-up: the compiler itself.
    code = (
        "import time,sys; t=time.perf_counter(); from dyncc.api import render_targets; "
        "from dyncc.compiler import compile_spec; from dyncc.deployment import load_spec; i=time.perf_counter(); "
        f"c=compile_spec(load_spec({str(tmp / 'scale-10240.yaml')!r})); render_targets(c,['k8s','slurm']); "
        "print(f'{(time.perf_counter()-i)*1000:.0f}')"
    )
    inproc = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    out += ["", f"10,240 GPUs, in process after imports: {inproc} ms to validate, compile and render.", ""]

    out += [
        "## Where a build's time goes",
        "",
        "Each library imported alone in a cold process, minus `python -c pass`:",
        "",
        "| library | import ms |",
        "| --- | --- |",
    ]
    floor_pass, _ = measure([PY, "-c", "pass"], runs)
    for library, statement in zip(FLOOR_LIBRARIES, FLOOR_STATEMENTS):
        t, _ = measure([PY, "-c", statement], runs)
        out.append(f"| {library} | {(t - floor_pass) * 1000:.0f} |")
    samples = [
        dict(
            item.split("=")
            for item in subprocess.run([PY, "-c", PHASES], cwd=ROOT, capture_output=True, text=True, check=True)
            .stdout.strip()
            .split(";")
        )
        for _ in range(runs)
    ]
    out += [
        "",
        "One `build -t all` of disagg_router.yaml in process, phase by phase (median ms):",
        "",
        "| phase | ms |",
        "| --- | --- |",
    ]
    for phase in samples[0]:
        out.append(f"| {phase} | {statistics.median(float(s[phase]) for s in samples):.1f} |")
    out.append("")

    finish(out, runs, args.out)


def cold_runs(examples: list[Path], runs: int, tmp: Path, count_instructions: bool) -> tuple[list[str], float]:
    """Section 1: every example's validate and build -t all, interleaved with the floors; and the floor (s)."""
    commands = {
        "pass": [PY, "-c", "pass"],
        "floor": [PY, "-c", FLOOR_IMPORTS],
        "legacy": [PY, "-c", LEGACY_FLOOR_IMPORTS],
    }
    for example in examples:
        commands[f"validate {example.name}"] = [PY, "-m", "dyncc", "validate", str(example)]
        commands[f"build {example.name}"] = [
            PY, "-m", "dyncc", "build", str(example), "-t", "all", "-o", str(tmp / example.stem)
        ]  # fmt: skip
    found = interleaved(commands, runs)
    floor, floor_rss = found["floor"]
    legacy = found["legacy"][0]
    out = [
        "## Cold whole-process runs",
        "",
        f"Median of {runs} runs each, interleaved (pass, floors, then each example's validate and build, "
        f"round after round), on {os.cpu_count()} cores; peak RSS is the largest of the runs.",
        "",
        f'Library-import floor: `python -c "{FLOOR_IMPORTS}"` **{floor * 1000:.0f} ms**, {floor_rss:.0f} MiB '
        f"(`python -c pass` {found['pass'][0] * 1000:.0f} ms; the floor of earlier results, "
        f'`python -c "{LEGACY_FLOOR_IMPORTS}"`, {legacy * 1000:.0f} ms).',
        "",
        "| example | validate ms | build -t all ms | build / floor | build / earlier floor | build peak MiB |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    ratios = []
    for example in examples:
        v = found[f"validate {example.name}"][0]
        b, rss = found[f"build {example.name}"]
        ratios.append(b / floor)
        out.append(
            f"| {example.name} | {v * 1000:.0f} | {b * 1000:.0f} | {b / floor:.2f} | {b / legacy:.2f} | {rss:.0f} |"
        )
    out += [
        "",
        f"**`build -t all` / library-import floor: median {statistics.median(ratios):.2f}, "
        f"largest {max(ratios):.2f}** (goal 1.25, at most 1.5).",
        "",
    ]
    beyond = third_party_imports(BUILD_STATEMENT.format(spec=str(examples[0]))) - third_party_imports(FLOOR_IMPORTS)
    if beyond:  # the floor no longer holds every library a build imports: FLOOR_IMPORTS needs them
        out += [f"A build also imports {', '.join(sorted(beyond))}, which the floor does not.", ""]
    if count_instructions:
        out += instruction_counts(examples, tmp)
    return out, floor


def instruction_counts(examples: list[Path], tmp: Path) -> list[str]:
    example = next((e for e in examples if e.name == "disagg_router.yaml"), examples[0])
    build = instructions([PY, "-m", "dyncc", "build", str(example), "-t", "all", "-o", str(tmp / "instructions")])
    floor = instructions([PY, "-c", FLOOR_IMPORTS])
    legacy = instructions([PY, "-c", LEGACY_FLOOR_IMPORTS])
    if build is None or floor is None or legacy is None:
        return ["(no valgrind: instruction counts left out)", ""]
    return [
        f"Instructions (valgrind, deterministic): floor {floor / 1e6:.0f} M, earlier floor {legacy / 1e6:.0f} M, "
        f"`build -t all` of {example.name} {build / 1e6:.0f} M: {build / floor:.2f} x the floor "
        f"({build / legacy:.2f} x the earlier one).",
        "",
    ]


def finish(out: list[str], runs: int, path: Path) -> None:
    text = "\n".join(out) + "\n"
    print(text)
    path.write_text(
        "# dyncc benchmark results\n\n" + f"`python3 benchmarks/run.py --runs {runs}`, "
        f"{time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}.\n\n" + text
    )


if __name__ == "__main__":
    main()
