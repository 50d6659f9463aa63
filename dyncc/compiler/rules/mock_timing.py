"""The mock engine's timing (DYN910, DYN912, DYN913): what `mocker_timing` names can time the workers.

`mocker_timing` other than `builtin` makes the mock workers run at the speed of the GPUs they stand for
(the timed twin, :mod:`dyncc.twin`). These rules check what validate can know without running
AIConfigurator: that mock workers exist to be timed, that a named file is a mocker timing file, and that
the spec says everything AIConfigurator estimates at. (Dynamo versions whose mock engine reads no timing
file are DYN703.)
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic
from dyncc.sla.mapping import SYSTEMS, system_for_gpu_type

BUILTIN = "builtin"
AICONFIGURATOR = "aiconfigurator"
# The arrays Dynamo 1.6.1's mocker reads (dynamo/mocker/utils/planner_profiler_perf_data_converter.py).
NPZ_KEYS = ("prefill_isl", "prefill_ttft_ms", "decode_active_kv_tokens", "decode_context_length", "decode_itl")
MAX_TIMING_FILE_BYTES = 16 * 1024 * 1024  # a grid of a few thousand points is kilobytes; this bounds the read


def timing_path(value: str, spec_dir: Path | None) -> Path:
    """A `mocker_timing` file, a relative one read from the spec file's directory."""
    path = Path(value)
    return path if path.is_absolute() or spec_dir is None else spec_dir / path


def npz_problem(path: Path) -> str | None:
    """Why the mock engine could not read ``path`` as its timing (None: it can): a regular file of at most
    16 MiB holding the five arrays, finite and positive, of sizes that agree."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_size > MAX_TIMING_FILE_BYTES:
        return f"is {st.st_size} bytes, over the {MAX_TIMING_FILE_BYTES} a timing file can be"
    try:
        import numpy as np
    except ImportError:  # numpy comes with Dynamo, which runs the mock engine
        return "cannot be checked: numpy is not installed (Dynamo brings it)"
    try:
        with np.load(path, allow_pickle=False) as data:
            # An NPZ is a zip: a small file can inflate to gigabytes, so its members' sizes are read first.
            inflated = sum(member.file_size for member in data.zip.infolist())
            if inflated > MAX_TIMING_FILE_BYTES:
                return f"inflates to {inflated} bytes, over the {MAX_TIMING_FILE_BYTES} a timing file can hold"
            arrays = {k: np.asarray(data[k], dtype=float) for k in NPZ_KEYS}
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        return f"is not an NPZ with the arrays {', '.join(NPZ_KEYS)} ({str(exc)[:120]})"
    kv, ctx = arrays["decode_active_kv_tokens"].shape, arrays["decode_context_length"].shape
    if (
        arrays["prefill_isl"].ndim != 1
        or arrays["prefill_isl"].shape != arrays["prefill_ttft_ms"].shape
        or len(kv) != 1
        or len(ctx) != 1
        or arrays["decode_itl"].shape != (kv[0], ctx[0])
        or min(a.size for a in arrays.values()) < 1
    ):
        return "holds arrays whose sizes disagree (decode_itl must be KV tokens x context lengths)"
    if not all(np.all(np.isfinite(a)) for a in arrays.values()):
        return "holds values that are not finite"
    if not (np.all(arrays["prefill_ttft_ms"] > 0) and np.all(arrays["decode_itl"] > 0)):
        return "holds step times that are not positive"
    return None


@rule("DYN910", "mocker-timing-needs-mocker")
def timing_needs_mock_workers(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """`mocker_timing` times Dynamo's mock engine: the workers must be mock workers."""
    spec = graph.spec
    if spec.mocker_timing != BUILTIN and spec.worker_runtime != "mocker":
        yield finding(
            f"mocker_timing {spec.mocker_timing[:80]!r} times Dynamo's mock engine, but the workers run "
            f"{spec.worker_runtime}: real engines take the time they take",
            ("mocker_timing",),
            "add worker_runtime: mocker (or --engine mocker), or remove mocker_timing",
        )


@rule("DYN912", "mocker-timing-file-readable")
def timing_file_is_a_mocker_npz(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A `mocker_timing` path names a timing file Dynamo's mock engine can read."""
    value = graph.spec.mocker_timing
    if value in (BUILTIN, AICONFIGURATOR):
        return
    problem = npz_problem(timing_path(value, graph.spec_dir))
    if problem is not None:
        yield finding(
            f"mocker_timing {value[:120]!r} {problem}",
            ("mocker_timing",),
            "name a mocker timing NPZ (prefill_isl, prefill_ttft_ms, decode_active_kv_tokens, "
            "decode_context_length, decode_itl), relative to the spec file, or use `aiconfigurator`",
        )


@rule("DYN913", "mocker-timing-estimable")
def aiconfigurator_timing_has_its_inputs(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """`mocker_timing: aiconfigurator` needs what AIConfigurator estimates at: a GPU it has data for, the
    workload's ISL/OSL, each pool's batch size, and pools it models."""
    spec = graph.spec
    if spec.mocker_timing != AICONFIGURATOR:
        return
    systems = ", ".join(sorted({name for name, _ in SYSTEMS.values()}))
    gpu_type = spec.cluster.gpu_type
    if gpu_type is None:
        yield finding(
            "mocker_timing aiconfigurator: cluster.gpu_type is not set, so there is no GPU to time the workers as",
            ("cluster",),
            f"set cluster.gpu_type to one of {systems}",
        )
    elif system_for_gpu_type(gpu_type) is None:
        yield finding(
            f"mocker_timing aiconfigurator: AIConfigurator has no data for gpu_type {gpu_type!r}",
            ("cluster", "gpu_type"),
            f"one of {systems}, or give a timing file",
        )
    if spec.benchmark is None:
        yield finding(
            "mocker_timing aiconfigurator: the timing grid is laid around the workload, and the spec has "
            "no benchmark: section with its isl and osl",
            ("mocker_timing",),
            "add benchmark: {isl, osl, concurrency}",
        )
    for role, pool in spec.pools.declared():
        if role == "encode":
            yield finding(
                "mocker_timing aiconfigurator: AIConfigurator does not model encode workers",
                ("pools", "encode"),
                "drop the encode pool for a timed run, or give a timing file",
            )
        elif pool.engine.max_batch_size is None:
            yield finding(
                f"mocker_timing aiconfigurator: pools.{role} has no engine.max_batch_size, the most requests "
                "the decode-step grid must cover",
                ("pools", role, "engine"),
                "set engine.max_batch_size (per attention-DP rank)",
            )
