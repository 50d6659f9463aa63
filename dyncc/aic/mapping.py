"""AIConfigurator's rows <-> dyncc spec data, both ways, without AIConfigurator.

The rows are those of aiconfigurator 0.12.0's ``cli_default`` (``best_configs``), whose numbers were
measured on the engine version the engine declares (``Engine.aic_data_version``), which need not be the one
the spec deploys. Column meanings that differ from dyncc's:

- ``tp`` is the *attention* tensor parallelism and ``dp`` the attention data parallelism; a worker has
  ``tp x dp`` ranks per pipeline stage, which is dyncc's ``tensor_parallel`` (attention DP runs inside the
  TP ranks: ``attention_dp: true`` with ``tensor_parallel = dp``). A spec's pool has no mix of attention
  TP and DP (``attention_dp`` makes every TP rank a DP rank, as the engine does), so a row with both above 1
  is refused.
- ``bs`` is per attention-DP rank, as the spec's ``engine.max_batch_size`` is.
- ``moe_tp`` x ``moe_ep`` split the same ranks for MoE layers: dyncc's ``moe_tensor_parallel`` and
  ``expert_parallel``.
- ``num_total_gpus`` is one replica group (agg: one worker; disagg: ``(p)workers`` prefill plus
  ``(d)workers`` decode workers); the deployment runs ``total_gpus // num_total_gpus`` such groups.
- ``concurrency`` and the throughputs are per replica group.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec

from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.facts.aic_systems import SYSTEMS

Mode = Literal["agg", "disagg"]


class Worker(msgspec.Struct, frozen=True):
    """One worker's shape in AIConfigurator's terms."""

    tp: int  # attention TP
    pp: int = 1
    dp: int = 1  # attention DP
    moe_tp: int = 1
    moe_ep: int = 1
    bs: int = 1  # per attention-DP rank

    @property
    def ranks(self) -> int:
        return self.tp * self.dp * self.pp

    def key(self) -> str:
        return f"tp{self.tp}-pp{self.pp}-dp{self.dp}-etp{self.moe_tp}-ep{self.moe_ep}"


class ModelFacts(msgspec.Struct, frozen=True):
    moe: bool
    num_experts: int | None
    mtp_layers: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelFacts:
        return cls(bool(data.get("moe")), data.get("num_experts"), int(data.get("mtp_layers") or 0))


class Candidate(msgspec.Struct, frozen=True):
    """One row of a search, ready to become a spec."""

    mode: Mode
    rank: int  # 1 = AIConfigurator's best of this mode
    row: dict[str, Any]
    workers: dict[str, tuple[Worker, int]]  # role -> (shape, workers per replica group)
    groups: int  # replica groups the GPUs hold

    @property
    def gpus_per_group(self) -> int:
        return sum(w.ranks * n for w, n in self.workers.values())

    @property
    def gpus(self) -> int:
        return self.gpus_per_group * self.groups

    def label(self) -> str:
        parts = [f"{n * self.groups} x {role} {_shape(w)}" for role, (w, n) in self.workers.items()]
        return f"{self.mode} #{self.rank}: " + " + ".join(parts)


def _shape(w: Worker) -> str:
    text = f"TP{w.tp * w.dp}"
    if w.dp > 1:
        text += " (attention DP)"
    if w.pp > 1:
        text += f" PP{w.pp}"
    if w.moe_ep > 1:
        text += f" EP{w.moe_ep}"
    return text + f" bs{w.bs}"


def mapping_error(message: str, hint: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic("DYN908", message, hint=hint)])


def _int(row: dict[str, Any], key: str, default: int = 1) -> int:
    value = row.get(key)
    if value is None:
        return default
    if isinstance(value, float) and not value.is_integer():
        raise mapping_error(f"AIConfigurator column {key!r} is {value}, not a whole number", "report this row")
    return int(value)


def worker_from_row(row: dict[str, Any], prefix: str = "") -> Worker:
    return Worker(
        tp=_int(row, prefix + "tp"),
        pp=_int(row, prefix + "pp"),
        dp=_int(row, prefix + "dp"),
        moe_tp=_int(row, prefix + "moe_tp"),
        moe_ep=_int(row, prefix + "moe_ep"),
        bs=_int(row, prefix + "bs"),
    )


def candidate(mode: Mode, rank: int, row: dict[str, Any], total_gpus: int) -> Candidate:
    if mode == "agg":
        workers = {"agg": (worker_from_row(row), 1)}
    else:
        workers = {
            "prefill": (worker_from_row(row, "(p)"), _int(row, "(p)workers")),
            "decode": (worker_from_row(row, "(d)"), _int(row, "(d)workers")),
        }
    per_group = sum(w.ranks * n for w, n in workers.values())
    declared = _int(row, "num_total_gpus", per_group)
    if per_group < 1 or declared != per_group:
        raise mapping_error(
            f"{mode} row {rank}: its workers use {per_group} GPUs but it says num_total_gpus {declared}",
            "report this row to AIConfigurator; dyncc takes the next one",
        )
    groups = total_gpus // per_group
    if groups < 1:
        raise mapping_error(
            f"{mode} row {rank} needs {per_group} GPUs per replica, more than the {total_gpus} given",
            "give more GPUs",
        )
    return Candidate(mode, rank, row, workers, groups)


def candidates(search: dict[str, Any], mode: str, total_gpus: int) -> tuple[list[Candidate], list[Diagnostic]]:
    """The rows of a search, best first: ``best`` puts AIConfigurator's chosen mode first, then the other.
    Rows that cannot be read come back as DYN908 diagnostics instead."""
    rows: dict[str, list[dict[str, Any]]] = search.get("rows") or {}
    chosen = str(search.get("chosen") or "agg")
    order = [mode] if mode in ("agg", "disagg") else [chosen] + [m for m in ("agg", "disagg") if m != chosen]
    found: list[Candidate] = []
    problems: list[Diagnostic] = []
    for m in order:
        for i, row in enumerate(rows.get(m) or [], 1):
            try:
                found.append(candidate(m, i, row, total_gpus))  # type: ignore[arg-type]
            except DiagnosticError as exc:
                problems.extend(exc.diagnostics)
    return found, problems


def _pool(w: Worker, count: int, facts: ModelFacts, role: str) -> dict[str, Any]:
    if w.tp > 1 and w.dp > 1:
        raise mapping_error(
            f"the {role} worker mixes attention TP {w.tp} with attention DP {w.dp}; the engine runs one or the other",
            "dyncc takes the next row",
        )
    pool: dict[str, Any] = {"replicas": count, "tensor_parallel": w.tp * w.dp}
    if w.pp > 1:
        pool["pipeline_parallel"] = w.pp
    if w.dp > 1:
        pool["attention_dp"] = True
    if facts.moe:
        if w.moe_tp * w.moe_ep != w.tp * w.dp:
            raise mapping_error(
                f"the {role} worker's MoE TP {w.moe_tp} x EP {w.moe_ep} does not cover its {w.tp * w.dp} ranks",
                "dyncc takes the next row",
            )
        if w.moe_ep > 1:
            pool["expert_parallel"] = w.moe_ep
        pool["moe_tensor_parallel"] = w.moe_tp
    elif w.moe_ep > 1:
        raise mapping_error(f"the {role} worker has EP {w.moe_ep} for a dense model", "dyncc takes the next row")
    pool["engine"] = {"max_batch_size": w.bs}
    return pool


class Request(msgspec.Struct, frozen=True):
    """What the user asked for (``init --from-sla``)."""

    model: str
    system: str
    gpus: int
    isl: int
    osl: int
    ttft: float
    tpot: float
    mode: str = "best"
    mtp: int = 0  # draft length; 0 = no speculation
    mtp_accepted: float | None = None


def spec_data(c: Candidate, req: Request, facts: ModelFacts, name: str) -> dict[str, Any]:
    """The spec (plain data) for one candidate; dyncc's own rules check it afterwards."""
    gpu_type, per_node = SYSTEMS.get(req.system, (req.system.upper(), 8))
    model: dict[str, Any] = {"path": req.model, "moe": facts.moe}
    if facts.moe and facts.num_experts:
        model["num_experts"] = facts.num_experts
    if facts.mtp_layers:
        model["mtp_layers"] = facts.mtp_layers
    if facts.moe or facts.mtp_layers:
        model["trust_remote_code"] = True
    data: dict[str, Any] = {
        "apiVersion": "dyncc/v1",
        "name": name,
        "model": model,
        "cluster": {"gpu_type": gpu_type, "gpus_per_node": per_node, "nodes": max(1, math.ceil(c.gpus / per_node))},
    }
    if req.mtp:
        data["speculative"] = {"mode": "mtp", "draft_len": req.mtp}
    if c.mode == "disagg":
        data["kv_transfer"] = {"backend": "NIXL"}
    data["pools"] = {role: _pool(w, n * c.groups, facts, role) for role, (w, n) in c.workers.items()}
    concurrency = _int(c.row, "concurrency", 1) * c.groups
    data["benchmark"] = {"isl": req.isl, "osl": req.osl, "concurrency": sorted({1, concurrency})}
    return data


def prediction(c: Candidate) -> dict[str, float]:
    """The numbers a header states and ``dyncc estimate`` reproduces."""
    keys = {
        "ttft": "ttft",
        "tpot": "tpot",
        "tokens_per_s_per_gpu": "tokens/s/gpu",
        "tokens_per_s_per_user": "tokens/s/user",
    }
    return {name: float(c.row.get(col) or 0.0) for name, col in keys.items()}


def aic_worker_args(pool: Any, is_moe: bool) -> dict[str, int]:
    """A dyncc pool's parallelism in AIConfigurator's terms (the inverse of :func:`_pool`)."""
    ranks = pool.tensor_parallel
    tp, dp = (1, ranks) if pool.attention_dp else (ranks, 1)
    args = {"tp_size": tp, "pp_size": pool.pipeline_parallel, "attention_dp_size": dp}
    if is_moe:
        moe_tp = pool.moe_tensor_parallel or max(1, ranks // pool.expert_parallel)
        args.update(moe_tp_size=moe_tp, moe_ep_size=pool.expert_parallel)
    return args
