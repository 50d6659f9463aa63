"""The SLA gate: `dyncc bench DIR` (and `dyncc up --bench`) runs the compiled aiperf benchmark (bench.sh)
against a running deployment and fails, with a code, when a request failed (DYN920), a reply was empty or
shorter than the benchmark's OSL (DYN921: every request asks for exactly OSL tokens, ignoring EOS), or the
measured TTFT or ITL break the SLA (DYN922, DYN923). Results, the SLA and the predicted-vs-measured ratio
go to one JSON and one Markdown report beside aiperf's exports.

Each request is judged from aiperf's per-request records (``profile_export.jsonl``): they exist even when
every request failed, when aiperf writes no summary. A request aiperf never recorded counts as failed.
On Slurm the benchmark runs inside the job's allocation (an ``srun --overlap`` step on the head node, as the
job's own benchmark step does), so it reaches the frontend the way the cluster's nodes do.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.tools.lifecycle.logs import Tail, last_lines
from dyncc.tools.lifecycle.options import BENCH_TIMEOUT_S
from dyncc.tools.lifecycle.state import DeploymentState, Prediction, Sla

Echo = Callable[[str], None]
MAX_RECORD_LINE = 4 * 1024 * 1024  # a per-request record: a few KB (its chunk latencies)
STOP_GRACE_S = 10


class Level(msgspec.Struct):
    """One aiperf run (a concurrency level), judged request by request."""

    concurrency: int
    expected: int  # requests asked for
    recorded: int = 0
    failed: int = 0
    empty: int = 0
    short: int = 0
    errors: list[str] = msgspec.field(default_factory=list)  # the first few distinct error messages
    ttft_ms: list[float] = msgspec.field(default_factory=list)
    itl_ms: list[float] = msgspec.field(default_factory=list)
    output_tokens_per_s: float | None = None  # aiperf's summary, when it wrote one
    ran: bool = True

    @property
    def not_recorded(self) -> int:
        return max(self.expected - self.recorded, 0)

    def summary(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "ran": self.ran,
            "requests": self.expected,
            "recorded": self.recorded,
            "failed": self.failed + self.not_recorded,
            "empty_replies": self.empty,
            "short_replies": self.short,
            "errors": self.errors,
            "ttft_ms": stats(self.ttft_ms),
            "itl_ms": stats(self.itl_ms),
            "output_tokens_per_s": self.output_tokens_per_s,
        }


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "avg": sum(ordered) / len(ordered),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
    }


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), of sorted values."""
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def read_level(directory: Path, concurrency: int, expected: int, osl: int) -> Level:
    """A level's verdict from its per-request records (and aiperf's summary for throughput)."""
    level = Level(concurrency, expected)
    records = directory / "profile_export.jsonl"
    if not records.is_file():
        level.ran = False
        return level
    with open(records, "rb") as stream:
        while raw := stream.readline(MAX_RECORD_LINE + 1):
            if len(raw) > MAX_RECORD_LINE:  # not a record aiperf writes: skip to the next line
                while raw and not raw.endswith(b"\n"):
                    raw = stream.readline(MAX_RECORD_LINE + 1)
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict) or _phase(record) not in (None, "profiling"):
                continue  # a warm-up request is not judged
            level.recorded += 1
            _judge(level, record, osl)
    level.output_tokens_per_s = _summary_throughput(directory / "profile_export_aiperf.json")
    return level


def _phase(record: dict[str, Any]) -> str | None:
    metadata = record.get("metadata")
    phase = metadata.get("benchmark_phase") if isinstance(metadata, dict) else None
    return phase if isinstance(phase, str) else None


def _metric(metrics: dict[str, Any], name: str) -> float | None:
    value = (metrics.get(name) or {}).get("value") if isinstance(metrics.get(name), dict) else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _judge(level: Level, record: dict[str, Any], osl: int) -> None:
    error = record.get("error")
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    assert isinstance(metrics, dict)
    if error:
        level.failed += 1
        message = error.get("message") if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        text = f"{code}: {message}" if code else str(message)
        if len(level.errors) < 3 and text[:300] not in level.errors:
            level.errors.append(text[:300])
        return
    tokens = _metric(metrics, "output_sequence_length")
    if tokens is None:
        tokens = _metric(metrics, "usage_completion_tokens")
    if not tokens:
        level.empty += 1
    elif tokens < osl:
        level.short += 1
    ttft, itl = _metric(metrics, "time_to_first_token"), _metric(metrics, "inter_token_latency")
    if ttft is not None:
        level.ttft_ms.append(ttft)
    if itl is not None:
        level.itl_ms.append(itl)


def _summary_throughput(path: Path) -> float | None:
    try:
        with open(path, "rb") as stream:
            data = json.loads(stream.read(16 * 1024 * 1024))
        value = data["output_token_throughput"]["avg"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


# --- the verdict -----------------------------------------------------------------------------------------


def verdict(levels: list[Level], osl: int, sla: Sla | None, statistic: str, streaming: bool) -> list[Diagnostic]:
    """Every reason the run fails the gate (errors), and what it could not judge (warnings)."""
    problems: list[Diagnostic] = []
    for level in levels:
        at = f"concurrency {level.concurrency}"
        if not level.ran:
            problems.append(
                Diagnostic("DYN920", f"{at}: not run (aiperf stopped at an earlier level)", hint=_failed_hint())
            )
            continue
        failed = level.failed + level.not_recorded
        if failed:
            shown = "; ".join(level.errors) or "no reply recorded"
            problems.append(
                Diagnostic(
                    "DYN920", f"{at}: {failed} of {level.expected} requests failed ({shown})", hint=_failed_hint()
                )
            )
        if level.empty or level.short:
            problems.append(
                Diagnostic(
                    "DYN921",
                    f"{at}: {level.empty} empty and {level.short} short replies (each asked for exactly {osl} "
                    "tokens, ignoring EOS)",
                    hint="a reply cut short is a request the engine or the frontend dropped: read the workers' logs",
                )
            )
        if sla is None or not streaming:
            continue
        for name, code, target, values in (
            ("TTFT", "DYN922", sla.ttft_ms, level.ttft_ms),
            ("ITL", "DYN923", sla.itl_ms, level.itl_ms),
        ):
            measured = (stats(values) or {}).get(statistic)
            if target is None or measured is None or measured <= target:
                continue
            problems.append(
                Diagnostic(
                    code,
                    f"{at}: {name} {statistic} {measured:.1f} ms is over the SLA's {target:g} ms ({sla.source})",
                    hint="more replicas or a smaller max_batch_size; or an SLA this topology can meet "
                    "(`dyncc estimate` predicts it)",
                )
            )
    if sla is None:
        problems.append(
            Diagnostic(
                "DYN926",
                "no SLA to hold latency to: only failed, empty and short replies are gated",
                severity="warning",
                hint="set planner.ttft_ms / planner.itl_ms in the spec, or pass --ttft-ms / --itl-ms",
            )
        )
    elif not streaming:
        problems.append(
            Diagnostic(
                "DYN926",
                "the benchmark does not stream (benchmark.streaming: false): TTFT and ITL are not measured",
                severity="warning",
                hint="set benchmark.streaming: true to gate latency",
            )
        )
    return problems


def _failed_hint() -> str:
    return "read the frontend's and workers' logs (`dyncc logs DIR COMPONENT`); aiperf's log is under the results"


def ratios(levels: list[Level], prediction: Prediction | None, gpus: int) -> list[dict[str, Any]]:
    """measured / predicted per level, for TTFT, ITL and output tokens/s/GPU (averages)."""
    if prediction is None:
        return []
    rows = []
    for level in levels:
        ttft, itl = stats(level.ttft_ms), stats(level.itl_ms)
        per_gpu = level.output_tokens_per_s / gpus if level.output_tokens_per_s is not None and gpus else None
        rows.append(
            {
                "concurrency": level.concurrency,
                "ttft": _ratio(ttft["avg"] if ttft else None, prediction.ttft_ms),
                "itl": _ratio(itl["avg"] if itl else None, prediction.itl_ms),
                "tokens_per_s_per_gpu": _ratio(per_gpu, prediction.tokens_per_s_per_gpu),
            }
        )
    return rows


def _ratio(measured: float | None, predicted: float | None) -> float | None:
    return measured / predicted if measured is not None and predicted else None


# --- running it ------------------------------------------------------------------------------------------


def bench_command(state: DeploymentState, results: Path) -> tuple[list[str], dict[str, str]]:
    """What runs the compiled benchmark, and its environment: bench.sh here, or as a step of the job."""
    script = str(Path(state.directory) / "bench.sh")
    assert state.url is not None
    if state.slurm is not None:
        from dyncc.tools.lifecycle.slurm import slurm_env

        step = ["srun", f"--jobid={state.slurm.job_id}", "--overlap", "--nodes=1", "--ntasks=1", "--gres=none"]
        return [*step, "--job-name=bench", "bash", script, state.url, str(results)], slurm_env(state.slurm.slurm_conf)
    return ["bash", script, state.url, str(results)], dict(os.environ)


def run_benchmark(
    state: DeploymentState, results: Path, timeout: float, echo: Echo, stopping: threading.Event
) -> int | None:
    """Run bench.sh to its end (its exit status), or None when stopped or out of time (it is killed)."""
    argv, env = bench_command(state, results)
    results.mkdir(parents=True, exist_ok=True)
    log = results / "bench.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    tail = Tail(log)
    waited = 0.0
    try:
        while process.poll() is None and waited < timeout and not stopping.is_set():
            for line in tail.lines():
                if line.startswith("dyncc:"):
                    echo(f"dyncc bench: {line.removeprefix('dyncc: ')}")
            stopping.wait(0.5)
            waited += 0.5
        for line in tail.rest():
            if line.startswith("dyncc:"):
                echo(f"dyncc bench: {line.removeprefix('dyncc: ')}")
        return process.returncode
    finally:
        if process.poll() is None:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


class GateOptions(msgspec.Struct, frozen=True):
    results: Path | None = None
    ttft_ms: float | None = None
    itl_ms: float | None = None
    statistic: str = "avg"
    timeout: float = BENCH_TIMEOUT_S
    prediction: Prediction | None = None  # overrides the state's (from --estimate)


def gate(state: DeploymentState, options: GateOptions, echo: Echo, stopping: threading.Event) -> list[Diagnostic]:
    """Benchmark the running deployment and judge it; the problems (errors fail the gate). Writes
    gate.json and gate.md into the results directory."""
    bench = state.benchmark
    if bench is None or not (Path(state.directory) / "bench.sh").is_file():
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN924",
                    f"the spec of {state.name} has no benchmark: section, so nothing was compiled to run",
                    hint="add `benchmark: {isl: 512, osl: 128, concurrency: [1, 4], request_count: 20}` "
                    "(small counts run fast) and `dyncc up` again",
                )
            ]
        )
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results = options.results or Path(state.directory) / "run" / f"bench-{stamp}"
    echo(f"dyncc bench: aiperf at concurrency {', '.join(map(str, bench.concurrency))} against {state.url}")
    status = run_benchmark(state, results, options.timeout, echo, stopping)
    if status is None:
        what = "interrupted" if stopping.is_set() else f"stopped after --timeout {options.timeout:g} s"
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN925", f"the benchmark was {what}; results so far are in {results}", hint=_log_hint(results)
                )
            ]
        )
    levels = [read_level(results / f"c{c}", c, bench.request_count, bench.osl) for c in bench.concurrency]
    if status != 0 and not any(level.recorded for level in levels):
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN925",
                    f"the benchmark exited {status} and recorded no request: {_last_line(results / 'bench.log')}",
                    hint=_log_hint(results),
                )
            ]
        )
    sla = _sla(state.sla, options)
    problems = verdict(levels, bench.osl, sla, options.statistic, bench.streaming)
    prediction = options.prediction or state.prediction
    report = {
        "deployment": {
            "name": state.name,
            "target": state.target,
            "directory": state.directory,
            "url": state.url,
            "job_id": state.slurm.job_id if state.slurm else None,
            "gpus": state.gpus,
        },
        "benchmark": bench.model_dump(),
        "sla": {**sla.model_dump(), "statistic": options.statistic} if sla else None,
        "levels": [level.summary() for level in levels],
        "prediction": prediction.model_dump() if prediction else None,
        "measured_over_predicted": ratios(levels, prediction, state.gpus),
        "passed": not any(p.is_error for p in problems),
        "problems": [p.to_json() for p in problems],
        "aiperf_exit_status": status,
        "results": str(results),
    }
    (results / "gate.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (results / "gate.md").write_text(markdown(report), encoding="utf-8")
    for line in summary_lines(report):
        echo(line)
    return problems


def _sla(recorded: Sla | None, options: GateOptions) -> Sla | None:
    if options.ttft_ms is None and options.itl_ms is None:
        return recorded
    return Sla(
        ttft_ms=options.ttft_ms if options.ttft_ms is not None else (recorded.ttft_ms if recorded else None),
        itl_ms=options.itl_ms if options.itl_ms is not None else (recorded.itl_ms if recorded else None),
        source="--ttft-ms / --itl-ms" + (f" over {recorded.source}" if recorded else ""),
    )


def _log_hint(results: Path) -> str:
    return f"bench.sh's output is {results / 'bench.log'}; aiperf's logs are under {results}/c*/logs"


def _last_line(path: Path) -> str:
    lines = [line for line in last_lines(path, 5) if line.strip()]
    return lines[-1][-300:] if lines else "(no output)"


def _ms(values: dict[str, float] | None, key: str) -> str:
    return f"{values[key]:.1f}" if values else "-"


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for level in report["levels"]:
        ttft, itl = level["ttft_ms"], level["itl_ms"]
        lines.append(
            f"dyncc bench: c{level['concurrency']}: {level['recorded']}/{level['requests']} recorded, "
            f"{level['failed']} failed, {level['empty_replies']} empty, {level['short_replies']} short; "
            f"TTFT avg {_ms(ttft, 'avg')} p90 {_ms(ttft, 'p90')} ms, ITL avg {_ms(itl, 'avg')} p90 {_ms(itl, 'p90')} ms"
        )
    verdict_text = "PASS" if report["passed"] else "FAIL"
    lines.append(f"dyncc bench: {verdict_text}; report: {report['results']}/gate.md, gate.json")
    return lines


def markdown(report: dict[str, Any]) -> str:
    d, sla = report["deployment"], report["sla"]
    out = [
        f"# SLA gate: {d['name']} ({d['target']}) — {'PASS' if report['passed'] else 'FAIL'}",
        "",
        f"Frontend {d['url']}" + (f", Slurm job {d['job_id']}" if d["job_id"] else "") + f"; {d['gpus']} GPU(s).",
        f"Benchmark: ISL {report['benchmark']['isl']}, OSL {report['benchmark']['osl']} (exactly, ignore_eos), "
        f"{report['benchmark']['request_count']} requests per concurrency level.",
        "",
    ]
    if sla:
        target = ", ".join(f"{k} <= {sla[k + '_ms']:g} ms" for k in ("ttft", "itl") if sla[k + "_ms"] is not None)
        out += [f"SLA ({sla['statistic']} of each level): {target or 'none'}; from {sla['source']}.", ""]
    out += [
        "| concurrency | requests | failed | empty | short | TTFT avg | TTFT p90 | ITL avg | ITL p90 | output tok/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in report["levels"]:
        tput = f"{lv['output_tokens_per_s']:.1f}" if lv["output_tokens_per_s"] is not None else "-"
        out.append(
            f"| {lv['concurrency']} | {lv['requests']} | {lv['failed']} | {lv['empty_replies']} | {lv['short_replies']} "
            f"| {_ms(lv['ttft_ms'], 'avg')} | {_ms(lv['ttft_ms'], 'p90')} | {_ms(lv['itl_ms'], 'avg')} "
            f"| {_ms(lv['itl_ms'], 'p90')} | {tput} |"
        )
    if report["prediction"]:
        p = report["prediction"]
        out += ["", f"Prediction ({p['source']}): TTFT {p['ttft_ms']} ms, ITL {p['itl_ms']} ms, "
                f"{p['tokens_per_s_per_gpu']} tokens/s/GPU. Measured / predicted:", "",
                "| concurrency | TTFT | ITL | tokens/s/GPU |", "| --- | --- | --- | --- |"]  # fmt: skip
        for r in report["measured_over_predicted"]:
            cells = [f"{r[k]:.2f}" if r[k] is not None else "-" for k in ("ttft", "itl", "tokens_per_s_per_gpu")]
            out.append(f"| {r['concurrency']} | " + " | ".join(cells) + " |")
    if report["problems"]:
        out += ["", "## Problems", ""]
        out += [f"- {p['severity']} {p['code']}: {p['message']}" for p in report["problems"]]
    return "\n".join(out) + "\n"
