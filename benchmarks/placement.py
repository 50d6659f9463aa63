"""Placement on partly free nodes grows linearly with workers (issue 14, D-21).

    python3 benchmarks/placement.py [--runs 5] [--append benchmarks/results.md]

The worst case for first-fit is a cluster whose nodes each keep a GPU free: 3-GPU nodes and 2-GPU
workers leave every node partly free, so a scan from the first node with room walks every node
placed so far (quadratic: 18 s at 32,000 workers before the fix). Here each size is timed in process
(fastest of --runs, garbage collector paused): `place_ranks` alone, and the whole check (graph, rules, placement) of a spec of
that many workers, with the time ratio per doubling of workers. Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dyncc.compiler import check_spec  # noqa: E402
from dyncc.compiler.graph import pools  # noqa: E402
from dyncc.compiler.placement import place_ranks  # noqa: E402
from dyncc.deployment import load_spec_text  # noqa: E402

SIZES = (1250, 2500, 5000, 10000, 20000)  # system ports (<= 32767) cap a spec near 32k workers
GPUS_PER_NODE = 3


def partly_free_spec(workers: int) -> str:
    """`workers` TP-2 workers on as many 3-GPU nodes: every node ends with one GPU free."""
    return (
        "apiVersion: dyncc/v1\nname: placement-bench\nmodel: {path: m, moe: false}\n"
        f"cluster: {{gpus_per_node: {GPUS_PER_NODE}, nodes: {workers}}}\n"
        "local: {http_port: 40000, system_port_base: 1}\nslurm: {http_port: 40001}\n"
        f"pools:\n  agg: {{replicas: {workers}, tensor_parallel: 2}}\n"
    )


def best_ms(fn, runs: int) -> float:
    """Fastest of ``runs`` (the least disturbed by other processes on a shared machine), with the cyclic
    garbage collector paused: its full passes over every live object would time the collector, not us."""
    times = []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        finally:
            gc.enable()
    return min(times) * 1000


def measure(workers: int, runs: int) -> tuple[float, float]:
    loaded = load_spec_text(partly_free_spec(workers), "bench.yaml")
    graph, placement, diagnostics = check_spec(loaded)
    assert placement is not None and not diagnostics, diagnostics
    assert placement.nodes_used == workers  # every node used, each with one GPU left free
    infos = pools(graph)
    place_ms = best_ms(lambda: place_ranks(infos, GPUS_PER_NODE, workers), runs)
    check_ms = best_ms(lambda: check_spec(loaded), runs)
    return place_ms, check_ms


def report(runs: int) -> str:
    lines = [
        "## Placement on partly free nodes (D-21)",
        "",
        f"`python3 benchmarks/placement.py --runs {runs}`, {time.strftime('%Y-%m-%d')}, "
        f"Python {sys.version.split()[0]}: TP-2 workers on 3-GPU nodes (every node keeps one GPU free), "
        "in process, fastest of the runs with the garbage collector paused.",
        "",
        "| workers | place_ranks ms | ratio per doubling | graph + rules + placement ms | ratio per doubling |",
        "| --- | --- | --- | --- | --- |",
    ]
    previous: tuple[float, float] | None = None
    first: tuple[float, float] | None = None
    worst = 0.0
    for workers in SIZES:
        place_ms, check_ms = measure(workers, runs)
        ratios = ("", "")
        if previous is not None:
            r_place, r_check = place_ms / previous[0], check_ms / previous[1]
            worst = max(worst, r_place, r_check)
            ratios = (f"{r_place:.2f}", f"{r_check:.2f}")
        lines.append(f"| {workers} | {place_ms:.1f} | {ratios[0]} | {check_ms:.1f} | {ratios[1]} |")
        previous = (place_ms, check_ms)
        first = first or previous
    assert first is not None and previous is not None
    doublings = len(SIZES) - 1
    mean = max((previous[0] / first[0]) ** (1 / doublings), (previous[1] / first[1]) ** (1 / doublings))
    verdict = "met" if mean <= 2.2 else "missed"
    lines += [
        "",
        f"Mean ratio per doubling over {SIZES[0]}-{SIZES[-1]} workers: {mean:.2f} (target <= 2.2: {verdict}); "
        f"largest single step {worst:.2f} (steps of a few ms are noisy on a shared machine). "
        "CPU time of this process (time.process_time).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--append", type=Path, help="append the section to this Markdown file")
    args = parser.parse_args()
    text = report(args.runs)
    print(text, end="")
    if args.append:
        with args.append.open("a", encoding="utf-8") as out:
            out.write("\n" + text)


if __name__ == "__main__":
    main()
