"""Sweeps: a spec whose `sweep:` lists values for chosen fields becomes one concrete spec per
combination. Each point is validated (an invalid point is reported with its codes and skipped, not
fatal), built, and — with `run` — started, benchmarked with aiperf, and stopped in turn.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from dyncc import sweep_points
from dyncc.api import (
    check,
    compile_timed,
    render_targets,
    with_dynamo_version,
    with_mocker_timing,
    with_worker_runtime,
)
from dyncc.compiler import check_spec
from dyncc.deployment import load_spec_text
from dyncc.diagnostics import DiagnosticError, has_errors
from dyncc.output import write_tree
from dyncc.spec import LoadedSpec
from dyncc.spec.loader import read_spec_bytes
from dyncc.sweep_points import Point, expand_loaded, mark_invalid, summary

__all__ = ["Point", "check_points", "expand", "expand_loaded", "load_sweep", "summary"]


def expand(spec_path: Path) -> list[Point]:
    """One point per combination of the `sweep:` lists, in a stable order; the base spec must load."""
    return load_sweep(spec_path)[1]


def load_sweep(spec_path: Path, dynamo_version: str | None = None) -> tuple[LoadedSpec, list[Point]]:
    """The base spec (for locating diagnostics in it) and its points; with ``dynamo_version`` every point
    deploys that Dynamo release instead of the spec's (``--dynamo-version``, as on `build`)."""
    raw = read_spec_bytes(spec_path)  # bounded: refuses non-regular files and oversized specs
    base = load_spec_text(raw, str(spec_path), base_dir=spec_path.parent)  # the sweep itself must be valid
    base = with_dynamo_version(base, dynamo_version)  # DYN013 for a version that is not one
    return base, expand_loaded(raw, base, dynamo_version)


def check_points(points: list[Point], base: LoadedSpec, targets: Iterable[str]) -> None:
    """:func:`dyncc.sweep_points.check_points` with the API's check, as `validate` runs it."""
    sweep_points.check_points(points, base, targets, check)


def build_points(
    points: list[Point],
    out_dir: Path,
    targets: list[str],
    engine: str | None,
    base_dir: Path,
    timing: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> None:
    """Validate and build every point; invalid points keep their codes and are skipped. ``engine`` and
    ``timing`` override each point's worker runtime and mock timing (``--engine``, ``--timing``)."""
    for point in points:
        point.directory = out_dir / "points" / f"p{point.index:03d}"
        try:
            loaded = load_spec_text(point.spec_text, f"{point.directory}/spec.yaml", base_dir=base_dir)
            loaded = with_mocker_timing(with_worker_runtime(loaded, engine), timing)
            _, _, diagnostics = check_spec(loaded)
            if has_errors(diagnostics):
                raise DiagnosticError([d for d in diagnostics if d.is_error])
            compilation = compile_timed(loaded, progress)
            rendered, _ = render_targets(compilation, targets)
            point.gpus = compilation.plan.total_gpus
            point.timed_by = compilation.plan.mocker_timing if compilation.plan.mock_timing else None
        except DiagnosticError as exc:
            mark_invalid(point, list(exc.diagnostics))
            continue
        point.directory.mkdir(parents=True, exist_ok=True)
        (point.directory / "spec.yaml").write_text(point.spec_text)
        for target, files in rendered.items():
            write_tree(point.directory / target, files)
    write_index(points, out_dir)


def write_index(points: list[Point], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    index = [
        {
            "point": p.index,
            "name": p.name,
            "values": p.values,
            "valid": p.valid,
            "codes": p.codes,
            "messages": p.messages,
            "directory": str(p.directory.relative_to(out_dir)) if p.valid and p.directory else None,
        }
        for p in points
    ]
    (out_dir / "index.json").write_text(json.dumps(index, indent=2, default=str) + "\n")
    lines = ["| point | values | status |", "| --- | --- | --- |"]
    for p in points:
        status = f"built: points/p{p.index:03d}" if p.valid else "invalid: " + ", ".join(p.codes)
        lines.append(f"| p{p.index} | {p.label()} | {status} |")
    (out_dir / "index.md").write_text("\n".join(lines) + "\n")


# --- running points --------------------------------------------------------------------------

RESULT_COLUMNS = [
    "point",
    "values",
    "gpus",
    "concurrency",
    "requests",
    "errors",
    "request_throughput_per_s",
    "output_token_throughput_per_s",
    "output_token_throughput_per_gpu",
    "ttft_ms_avg",
    "itl_ms_avg",
    "request_latency_ms_avg",
    "request_latency_ms_p99",
]


def run_points(
    points: list[Point], out_dir: Path, timeout: float, progress: Callable[[Point], None] = lambda p: None
) -> None:
    """Start each built point, wait until ready, run its bench.sh, stop it; results per concurrency."""
    import subprocess

    from dyncc.tools.lifecycle.run import Deployment

    for point in points:
        if not point.valid or point.directory is None:
            continue
        local = point.directory / "local"
        deployment = Deployment(local / "launch.sh")
        try:
            if not deployment.wait_ready(timeout):
                point.messages.append("did not become ready: " + " | ".join(deployment.lines[-5:]))
                point.codes.append("not-ready")
                continue
            bench = subprocess.run(
                ["bash", str(local / "bench.sh"), str(deployment.url)],
                capture_output=True,
                text=True,
                timeout=timeout * 4,
            )
            if bench.returncode != 0:
                point.codes.append("bench-failed")
                point.messages.append(bench.stdout[-500:] + bench.stderr[-500:])
                continue
            point.results = collect_results(local / "run" / "bench")
        finally:
            deployment.stop()
            progress(point)
    write_results(points, out_dir)
    if any(p.timed_by == "aiconfigurator" and p.results for p in points):
        from dyncc.tools.twin.report import aic_predictor, write_report

        specs = {f"p{p.index}": p.directory / "spec.yaml" for p in points if p.directory is not None}
        write_report(out_dir, aic_predictor(specs.__getitem__))


def collect_results(bench_dir: Path) -> list[dict]:
    """aiperf's JSON export per concurrency level, reduced to the columns of the results table."""
    rows = []
    for export in sorted(bench_dir.glob("c*/profile_export_aiperf.json"), key=lambda p: int(p.parent.name[1:])):
        data = json.loads(export.read_text())

        def metric(key: str, stat: str = "avg", data: dict = data) -> float | None:
            return (data.get(key) or {}).get(stat)

        rows.append(
            {
                "concurrency": int(export.parent.name[1:]),
                "requests": metric("request_count"),
                "errors": (data.get("error_request_count") or {}).get("avg", 0) or 0,
                "request_throughput_per_s": metric("request_throughput"),
                "output_token_throughput_per_s": metric("output_token_throughput"),
                "ttft_ms_avg": metric("time_to_first_token"),
                "itl_ms_avg": metric("inter_token_latency"),
                "request_latency_ms_avg": metric("request_latency"),
                "request_latency_ms_p99": metric("request_latency", "p99"),
            }
        )
    return rows


def write_results(points: list[Point], out_dir: Path) -> None:
    rows = [
        {
            "point": f"p{p.index}",
            "values": p.label(),
            "gpus": p.gpus,
            **r,
            "output_token_throughput_per_gpu": (r["output_token_throughput_per_s"] or 0.0) / p.gpus if p.gpus else None,
        }
        for p in points
        for r in p.results
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RESULT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    (out_dir / "results.csv").write_text(buf.getvalue())
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    md = ["| " + " | ".join(RESULT_COLUMNS) + " |", "|" + " --- |" * len(RESULT_COLUMNS)]
    md += ["| " + " | ".join(fmt(r.get(c)) for c in RESULT_COLUMNS) + " |" for r in rows]
    skipped = [p for p in points if not p.valid]
    if skipped:
        md += ["", "Skipped: " + "; ".join(f"p{p.index} ({p.label()}): {', '.join(p.codes)}" for p in skipped)]
    (out_dir / "results.md").write_text("\n".join(md) + "\n")
    plot_results(points, out_dir / "results.png")


def plot_results(points: list[Point], path: Path) -> None:
    """Throughput against latency, one line per configuration (a marker per concurrency level)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for p in points:
        if not p.results:
            continue
        xs = [r["request_latency_ms_avg"] for r in p.results]
        ys = [r["output_token_throughput_per_s"] for r in p.results]
        ax.plot(xs, ys, marker="o", label=f"p{p.index}: {p.label()}")
        for r, x, y in zip(p.results, xs, ys):
            ax.annotate(f"c{r['concurrency']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("request latency, mean (ms)")
    ax.set_ylabel("output tokens / s")
    ax.set_title("dyncc sweep: throughput vs latency")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
