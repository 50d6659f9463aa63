"""The spec's `benchmark:` as an aiperf run, for every target that can start one.

One command line per concurrency level; aiperf writes its JSON/CSV exports to ``<results>/c<N>/``
(``profile_export_aiperf.json`` is what `dyncc sweep` reads).
"""

from __future__ import annotations

from dyncc.compiler.plan import DeploymentPlan
from dyncc.spec.model import Benchmark
from dyncc.targets.shell import Raw, shell_words


def aiperf_args(plan: DeploymentPlan, bench: Benchmark, url, concurrency, artifact_dir, tokenizer) -> list:
    args = [
        "profile",
        "--model",
        plan.served_name,
        "--url",
        url,
        "--endpoint-type",
        "chat",
        "--tokenizer",
        tokenizer,
        "--isl",
        str(bench.isl),
        "--osl",
        str(bench.osl),
        "--concurrency",
        concurrency,
        "--request-count",
        str(bench.request_count),
        "--artifact-dir",
        artifact_dir,
        # Exactly `osl` tokens per reply, as a fixed-ISL/OSL benchmark means (AIConfigurator's estimates
        # too): an engine that samples its end-of-sequence token early would otherwise shorten replies at
        # random, and an empty one counts as an aiperf error. Dynamo's frontend takes it at the request's root.
        "--extra-inputs",
        "ignore_eos:true",
        "--use-server-token-count",
        "--no-gpu-telemetry",
        "--ui-type",
        "none",
    ]
    if bench.streaming:
        args.insert(args.index("--tokenizer"), "--streaming")
    return args


def bench_script(plan: DeploymentPlan, bench: Benchmark, tokenizer, default_results: str) -> str:
    """bench.sh URL [RESULTS_DIR]: aiperf against a running deployment, one run per concurrency level."""
    levels = " ".join(str(c) for c in bench.concurrency)
    command = shell_words(
        [
            "env",
            "-u",
            "HF_HUB_OFFLINE",
            Raw('"$AIPERF"'),
            *aiperf_args(plan, bench, Raw('"$URL"'), Raw('"$C"'), Raw('"$RESULTS/c$C"'), tokenizer),
        ]
    )
    return f"""#!/usr/bin/env bash
# {plan.header}
# Benchmarks the running '{plan.name}' deployment with aiperf {bench.aiperf_version}: {bench.isl} input /
# {bench.osl} output tokens, {bench.request_count} requests at each concurrency of: {levels}.
# Usage: bench.sh FRONTEND_URL [RESULTS_DIR]    (results: RESULTS_DIR/c<concurrency>/profile_export_aiperf.json)
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
URL="${{1:?usage: bench.sh FRONTEND_URL [RESULTS_DIR]}}"
RESULTS="${{2:-{default_results}}}"
AIPERF="${{DYNCC_AIPERF:-aiperf}}"
mkdir -p "$RESULTS"
for C in {levels}; do
  echo "dyncc: aiperf at concurrency $C"
  {command}
done
echo "dyncc: benchmark results in $RESULTS"
"""
