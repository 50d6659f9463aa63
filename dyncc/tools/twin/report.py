"""A twin sweep's measured results (``results.csv`` of ``dyncc sweep --run --timing aiconfigurator``) beside
AIConfigurator's static prediction for the same topologies and load.

The twin runs Dynamo's real frontend, router and queueing around mock workers timed by AIConfigurator;
the static prediction sees none of those. Putting the two side by side, and ordering the topologies by
output tokens per second per GPU both ways, shows where routing, queueing and KV reuse move TTFT, ITL
and throughput away from the static model.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import msgspec

from dyncc.diagnostics import DiagnosticError


class Predicted(msgspec.Struct, frozen=True):
    ttft_ms: float
    itl_ms: float
    tokens_per_s_per_gpu: float  # output tokens per second per GPU of the deployment


Predictor = Callable[[str, int], Predicted | None]  # (point, concurrency) -> prediction, None when there is none

COLUMNS = [
    "point", "values", "gpus", "concurrency",
    "ttft_ms (twin)", "ttft_ms (aic)", "ratio",
    "itl_ms (twin)", "itl_ms (aic)", "ratio",
    "tokens/s/gpu (twin)", "tokens/s/gpu (aic)", "ratio",
]  # fmt: skip


class Row(msgspec.Struct, frozen=True):
    point: str
    values: str
    gpus: int
    concurrency: int
    ttft_ms: float | None
    itl_ms: float | None
    tokens_per_s_per_gpu: float | None
    predicted: Predicted | None


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "None") else None
    except ValueError:
        return None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(measured: float | None, predicted: float | None) -> str:
    return "-" if measured is None or not predicted else f"{measured / predicted:.2f}"


def read_rows(results_csv: Path, predict: Predictor) -> list[Row]:
    rows = []
    for row in csv.DictReader(io.StringIO(results_csv.read_text())):
        concurrency = int(float(row["concurrency"]))
        gpus = int(float(row.get("gpus") or 0))
        throughput = _num(row.get("output_token_throughput_per_s"))
        per_gpu = _num(row.get("output_token_throughput_per_gpu"))
        if per_gpu is None and throughput is not None and gpus:
            per_gpu = throughput / gpus
        rows.append(
            Row(
                row["point"],
                row.get("values", ""),
                gpus,
                concurrency,
                _num(row.get("ttft_ms_avg")),
                _num(row.get("itl_ms_avg")),
                per_gpu,
                predict(row["point"], concurrency),
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    """The comparison as a Markdown table (ratio = twin / AIConfigurator)."""
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for r in rows:
        p = r.predicted
        cells = [r.point, r.values, str(r.gpus), str(r.concurrency)]
        for measured, predicted in (
            (r.ttft_ms, p.ttft_ms if p else None),
            (r.itl_ms, p.itl_ms if p else None),
            (r.tokens_per_s_per_gpu, p.tokens_per_s_per_gpu if p else None),
        ):
            cells += [_fmt(measured), _fmt(predicted), _ratio(measured, predicted)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


class Ordering(msgspec.Struct, frozen=True):
    concurrency: int
    twin: tuple[str, ...]  # points, best throughput per GPU first
    aic: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return self.twin == self.aic


def orderings(rows: list[Row]) -> list[Ordering]:
    """Per concurrency level, the points ranked by output tokens/s per GPU as measured and as predicted
    (only points with both figures are ranked)."""
    out = []
    for concurrency in sorted({r.concurrency for r in rows}):
        level = [
            r
            for r in rows
            if r.concurrency == concurrency and r.tokens_per_s_per_gpu is not None and r.predicted is not None
        ]
        twin = sorted(level, key=lambda r: -(r.tokens_per_s_per_gpu or 0.0))
        aic = sorted(level, key=lambda r: -(r.predicted.tokens_per_s_per_gpu if r.predicted else 0.0))
        out.append(Ordering(concurrency, tuple(r.point for r in twin), tuple(r.point for r in aic)))
    return out


def aic_predictor(spec_for_point: Callable[[str], Path]) -> Predictor:
    """AIConfigurator's estimate for each point's spec at each concurrency, memoised per (point,
    concurrency). The concurrency is spread over the replicas of the pool that decodes, which gives the
    batch size each worker runs at; a point AIConfigurator cannot estimate has no prediction."""
    from dyncc.tools.sla import estimate

    memo: dict[tuple[str, int], Predicted | None] = {}

    def predict(point: str, concurrency: int) -> Predicted | None:
        if (point, concurrency) not in memo:
            path = spec_for_point(point)
            per_worker = max(1, -(-concurrency // _decode_replicas(path)))
            try:
                e = estimate(path, batch_size=per_worker)
            except DiagnosticError:
                memo[(point, concurrency)] = None
            else:
                memo[(point, concurrency)] = Predicted(e.ttft, e.tpot, e.tokens_per_s_per_gpu)
        return memo[(point, concurrency)]

    return predict


def _decode_replicas(path: Path) -> int:
    from dyncc.deployment import load_spec

    spec = load_spec(path).spec
    pools = dict(spec.pools.declared())
    pool = pools.get("agg") or pools.get("decode")
    return pool.replicas if pool is not None else 1


def write_report(sweep_dir: Path, predict: Predictor) -> Path:
    """``sweep_dir/twin-vs-aic.md`` from ``sweep_dir/results.csv``."""
    rows = read_rows(sweep_dir / "results.csv", predict)
    text = "# Twin (aiperf on the timed mock) vs AIConfigurator's static prediction\n\n"
    text += "ratio = twin / AIConfigurator; TTFT and ITL in ms; output tokens/s per GPU of the deployment.\n\n"
    text += table(rows)
    text += "\n## Ordering by output tokens/s per GPU (best first)\n\n"
    for o in orderings(rows):
        verdict = "same order" if o.agrees else "DIFFERENT order"
        text += (
            f"- concurrency {o.concurrency}: twin {' > '.join(o.twin)}; AIConfigurator {' > '.join(o.aic)}: {verdict}\n"
        )
    out = sweep_dir / "twin-vs-aic.md"
    out.write_text(text)
    return out
