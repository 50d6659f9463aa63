"""Values the lifecycle commands' options and the modules behind them share (cheap to import: the CLI reads
them when it starts)."""

from __future__ import annotations

STATISTICS = ("avg", "p50", "p90", "p99", "max")  # what of a level's TTFT/ITL the gate holds to the SLA
BENCH_TIMEOUT_S = 3600.0  # default bound of one `dyncc bench` run
SLURM_PENDING_ALLOWANCE_S = 600  # `up -t slurm` waits this long past the job's own readiness timeout
K8S_DEFAULT_WAIT_S = 1800  # `up -t k8s`: until the DynamoGraphDeployment is Ready
