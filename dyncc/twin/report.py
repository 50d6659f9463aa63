"""A sweep's measured results (``results.csv`` of ``dyncc sweep --run``) beside AIConfigurator's prediction.

The twin runs Dynamo's real frontend, router and queueing around mock workers timed by AIConfigurator;
the static prediction sees none of those. Putting the two side by side shows where routing, queueing
and KV reuse move TTFT, ITL and throughput away from the static model.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Predicted:
    ttft_ms: float
    itl_ms: float
    tokens_per_s: float  # output tokens per second of the whole deployment


Predictor = Callable[[str, int], Predicted | None]  # (point, concurrency) -> prediction, None when there is none

COLUMNS = [
    "point", "values", "concurrency", "ttft_ms (twin)", "ttft_ms (aic)", "ratio",
    "itl_ms (twin)", "itl_ms (aic)", "ratio", "tokens/s (twin)", "tokens/s (aic)", "ratio",
]  # fmt: skip


def _ratio(measured: float | None, predicted: float | None) -> str:
    if measured is None or not predicted:
        return "-"
    return f"{measured / predicted:.2f}"


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "None") else None
    except ValueError:
        return None


def compare(results_csv: Path, predict: Predictor) -> str:
    """The comparison as a Markdown table (ratio = twin / AIConfigurator)."""
    rows = list(csv.DictReader(io.StringIO(results_csv.read_text())))
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in rows:
        conc = int(float(row["concurrency"]))
        p = predict(row["point"], conc)
        ttft, itl, tput = (
            _num(row.get("ttft_ms_avg")),
            _num(row.get("itl_ms_avg")),
            _num(row.get("output_token_throughput_per_s")),
        )
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        cells = [row["point"], row.get("values", ""), str(conc), fmt(ttft)]
        cells += [fmt(p.ttft_ms if p else None), _ratio(ttft, p.ttft_ms if p else None)]
        cells += [fmt(itl), fmt(p.itl_ms if p else None), _ratio(itl, p.itl_ms if p else None)]
        cells += [fmt(tput), fmt(p.tokens_per_s if p else None), _ratio(tput, p.tokens_per_s if p else None)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def aic_predictor(spec_for_point: Callable[[str], Path]) -> Predictor:
    """Predictions from AIConfigurator's estimate for each point's spec at each concurrency (spread over the
    replicas of the pool that decodes), memoised per (point, concurrency)."""
    from dyncc.sla.commands import estimate

    memo: dict[tuple[str, int], Predicted | None] = {}

    def predict(point: str, concurrency: int) -> Predicted | None:
        if (point, concurrency) not in memo:
            path = spec_for_point(point)
            replicas = _decode_replicas(path)
            per_worker = max(1, -(-concurrency // replicas))
            e = estimate(path, batch_size=per_worker)
            gpus = float(e.raw.get("num_total_gpus") or 0) or 1.0
            tokens = e.tokens_per_s_per_gpu * gpus * (replicas if e.mode == "agg" else 1)
            memo[(point, concurrency)] = Predicted(e.ttft, e.tpot, tokens)
        return memo[(point, concurrency)]

    return predict


def _decode_replicas(path: Path) -> int:
    from dyncc.sla.commands import _loader

    spec = _loader("load_spec")(path).spec
    pools = dict(spec.pools.declared())
    pool = pools.get("agg") or pools.get("decode")
    return pool.replicas if pool is not None else 1


def write_report(sweep_dir: Path, predict: Predictor) -> Path:
    """``sweep_dir/twin-vs-aic.md`` from ``sweep_dir/results.csv``."""
    text = "# Twin (aiperf on the timed mock) vs AIConfigurator's static prediction\n\n"
    text += "ratio = twin / AIConfigurator; TTFT and ITL in ms, throughput in output tokens/s.\n\n"
    text += compare(sweep_dir / "results.csv", predict)
    out = sweep_dir / "twin-vs-aic.md"
    out.write_text(text)
    return out
