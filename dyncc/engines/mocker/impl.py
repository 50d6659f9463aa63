"""The mock engine's work: each pool's ``python3 -m dynamo.mocker`` command line, from the limits of the
engine it stands in for, as the deployed release's mock parser spells them; what it cannot stand in for."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from dyncc.diagnostics import Diagnostic
from dyncc.engines.base import Engine, EngineRule, Graph, PoolWorkers, Slot, Word, WorkerCommand, finding, rule
from dyncc.engines.mocker import ENGINE
from dyncc.releases import Release

MODES = {"agg", "prefill", "decode"}  # the mock engine has no encode mode
# The worker limits and the mock's flags for them.
LIMIT_FLAGS = (
    ("max_batch_size", "--max-num-seqs"),
    ("max_num_tokens", "--max-num-batched-tokens"),
    ("max_seq_len", "--max-model-len"),
)

_RULES: list[EngineRule] = []


def release_view(release: Release) -> Release:
    """The mock reads its parser's flags straight from the release file."""
    return release


def modes(release: Release | None) -> set[str]:
    """The pool roles the release's mock engine can stand in for: its `--disaggregation-mode` choices; where
    it has no such option, prefill and decode where it has a switch for each (`--is-prefill-worker`,
    `--is-decode-worker`: 0.6.1-0.9.x), else aggregated serving alone (0.4-0.6.0)."""
    if release is None:
        return {"agg"}
    choices = release.choices("mocker", "--disaggregation-mode")
    if choices:
        return MODES & set(choices)
    return set(MODES) if all(release.has("mocker", _switch(role)) for role in SWITCHED) else {"agg"}


SWITCHED = ("prefill", "decode")  # the modes a mock engine without --disaggregation-mode turns on by a switch


def _switch(role: str) -> str:
    return f"--is-{role}-worker"


def _has(release: Release | None, option: str) -> bool:
    return release is None or release.has("mocker", option)


def worker_command(pool: PoolWorkers, release: Release) -> WorkerCommand:
    """The mock's command line. Its prefill->decode rendezvous port is a slot: a target that leaves it empty
    has no handoff listener (the handoff is then not simulated); so is its timing file (step times from the
    file instead of the mock's own arbitrary ones, where the plan carries one)."""
    limits = pool.limits
    component = "prefill" if pool.role == "prefill" else "backend"
    flags: list[Word] = [
        "--model-name",
        pool.served_name,
        "--endpoint",
        f"dyn://{pool.namespace}.{component}.generate",
        "--block-size",
        str(limits.block_size),
        "--speedup-ratio",
        repr(float(pool.speedup_ratio)),
    ]
    if release.has("mocker", "--disaggregation-mode"):
        flags += ["--disaggregation-mode", pool.role]
    elif pool.role in SWITCHED and release.has("mocker", _switch(pool.role)):
        flags.append(_switch(pool.role))  # without the switch the mode is DYN503's, said once
    # The prefill->decode rendezvous, where the release simulates it (0.8.0 on); without it the handoff is
    # not simulated, as on a target that leaves the slot empty.
    if pool.role == "prefill" and release.has("mocker", "--bootstrap-ports"):
        flags.append(Slot("bootstrap_port", flag="--bootstrap-ports"))
    if pool.request_plane is not None:  # frontend and workers must agree on it; the mock takes the same flag
        flags += ["--request-plane", pool.request_plane]
    if limits.data_parallel is not None:
        flags += ["--data-parallel-size", str(limits.data_parallel)]
    if pool.timing_file is not None:
        flags.append(Slot("data_file", pool.timing_file, flag="--planner-profile-data"))
    for key, flag in LIMIT_FLAGS:
        value = getattr(limits, key)
        # --max-model-len came with the 1.4 mock engine; without it the mock bounds nothing by length.
        if value is not None and _has(release, flag):
            flags += [flag, str(value)]
    args = ("--model-path", Slot("local_model"), *flags)
    return WorkerCommand(ENGINE.module, args, tuple(w for w in flags if isinstance(w, str)), pool.role)


def problems(pools: Sequence[PoolWorkers], release: Release, configuring: Engine) -> list[Diagnostic]:
    """DYN582: KVBM, which the mock has no connector for; DYN503: a pool whose mode the release's mock lacks."""
    found = []
    if any(p.kvbm for p in pools):
        found.append(
            Diagnostic(
                "DYN582",
                f"Dynamo {release.dynamo}'s mock engine has no KV block manager (KVBM) connector: "
                "kvbm.enabled would not run",
                path=("kvbm", "enabled"),
                hint=f"set kvbm.enabled: false for a mock run, or run the workers with worker_runtime: "
                f"{configuring.name}",
            )
        )
    unmockable = [p.role for p in pools if p.role not in modes(release)]
    if unmockable:
        found.append(
            Diagnostic(
                "DYN503",
                f"Dynamo {release.dynamo}'s mock engine has no {', '.join(unmockable)} mode",
                path=("worker_runtime",),
                hint=f"build this spec with worker_runtime {configuring.name}, or drop the pool for a mock run",
            )
        )
    return found


@rule(_RULES, "DYN127", "reply-parsing-under-mock")
def reply_parsing_under_the_mock_engine(graph: Graph) -> Iterator[Diagnostic]:
    """The mock engine takes no parser or chat-template options: a mock run is built without them, said once."""
    spec = graph.spec
    for field in ("tool_call_parser", "reasoning_parser", "chat_template"):
        if getattr(spec.model, field) is not None:
            yield finding(
                f"model.{field}: Dynamo {spec.dynamo.version}'s mock engine has no such option; the mock run "
                "serves unparsed replies with its tiny model's template",
                ("model", field),
                f"expected for a mock run; the {graph.engine.label} workers (worker_runtime: {graph.engine.name}) "
                "apply it",
                severity="warning",
            )


RULES = tuple(_RULES)
