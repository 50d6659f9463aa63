"""dyncc's performance, measured the way users meet it: cold, whole processes.

    python3 benchmarks/run.py [--runs 7] [--out benchmarks/results.md]

1. Cold wall time (median of --runs) and peak RSS of `dyncc validate` and `dyncc build -t all` per
   example, against the floor measured in the same run: `python -c "import pydantic, networkx,
   jinja2, ruamel.yaml, click"` (and `python -c pass`).
2. Scaling: generated specs of about 10, 100, 1,000 and 10,000 GPUs — validate + compile + render
   (k8s and slurm) in one fresh process each: wall time, peak RSS, and growth per doubling.
3. `dyncc validate --format json` on all examples in one process: time per spec.
4. Where the time of one build goes: each library's import alone, and dyncc's phases in process.

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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
FLOOR_LIBRARIES = ("pydantic", "networkx", "jinja2", "ruamel.yaml", "click")
FLOOR_IMPORTS = f"import {', '.join(FLOOR_LIBRARIES)}"
# One build of disagg_router.yaml, timed phase by phase in one process.
PHASES = """
import time, tempfile
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import click; mark("import click")
import networkx; mark("import networkx")
import pydantic, ruamel.yaml; from pydantic import BaseModel; mark("import pydantic, ruamel.yaml")
import dyncc.api; mark("import dyncc (spec models, compiler)")
from dyncc.spec import load_spec; loaded = load_spec("examples/disagg_router.yaml"); mark("load + validate spec")
from dyncc.compiler import compile_spec; compilation = compile_spec(loaded); mark("graph, rules, placement, plan")
rendered, _ = dyncc.api.render_targets(compilation, ["all"]); mark("render 3 targets (imports jinja2, PyYAML)")
from pathlib import Path; from dyncc.output import write_tree; out = Path(tempfile.mkdtemp())
for name, files in rendered.items(): write_tree(out / name, files)
mark("write files")
print(";".join(f"{b[0]}={(b[1] - a[1]) * 1000:.1f}" for a, b in zip(marks, marks[1:])))
"""


def measure(argv: list[str], runs: int, cwd: Path = ROOT, env: dict | None = None) -> tuple[float, float]:
    """Median wall seconds and max peak RSS (MiB) of `runs` cold runs of argv."""
    times, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{argv} exited {proc.returncode}")
    return statistics.median(times), max(peaks)


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
    args = parser.parse_args()
    runs = args.runs
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    out: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="dyncc-bench-"))
    compileall.compile_dir(str(ROOT / "dyncc"), quiet=1)

    floor_pass, _ = measure([PY, "-c", "pass"], runs)
    floor, floor_rss = measure([PY, "-c", FLOOR_IMPORTS], runs)
    out += [
        "## Cold whole-process runs",
        "",
        f"Median of {runs} runs each, on {os.cpu_count()} cores; peak RSS is the largest of the runs.",
        "",
        f'Floor: `python -c pass` {floor_pass * 1000:.0f} ms; `python -c "{FLOOR_IMPORTS}"` '
        f"**{floor * 1000:.0f} ms**, {floor_rss:.0f} MiB.",
        "",
        "| example | validate ms | build -t all ms | build / floor | build peak MiB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for example in examples:
        v, _ = measure([PY, "-m", "dyncc", "validate", str(example)], runs)
        b, rss = measure([PY, "-m", "dyncc", "build", str(example), "-t", "all", "-o", str(tmp / example.stem)], runs)
        out.append(f"| {example.name} | {v * 1000:.0f} | {b * 1000:.0f} | {b / floor:.2f} | {rss:.0f} |")

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
        "from dyncc.compiler import compile_spec; from dyncc.spec import load_spec; i=time.perf_counter(); "
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
    for library in FLOOR_LIBRARIES:
        t, _ = measure([PY, "-c", f"import {library}"], runs)
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

    text = "\n".join(out) + "\n"
    print(text)
    args.out.write_text(
        "# dyncc benchmark results\n\n" + f"`python3 benchmarks/run.py --runs {runs}`, "
        f"{time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}.\n\n" + text
    )


if __name__ == "__main__":
    main()
