"""Timing files for Dynamo's mock engine, from AIConfigurator's static estimates, cached.

Dynamo 1.6.1's mocker (``python -m dynamo.mocker --planner-profile-data FILE``) reads an NPZ with five
float64 arrays (``dynamo/mocker/utils/planner_profiler_perf_data_converter.py`` writes the same shape; what
its loader accepts is checked by :func:`dyncc.compiler.timing_file.timing_problem`, for files given
and files made here alike):

- ``prefill_isl`` (n) and ``prefill_ttft_ms`` (n): the time of one prefill pass of that many new tokens;
- ``decode_active_kv_tokens`` (k), ``decode_context_length`` (c) and ``decode_itl`` (k x c): the time of
  one decode step when the worker holds that many KV tokens over requests of that mean context length
  (batch = kv / context). The mocker interpolates linearly between grid points.

Each value is AIConfigurator's static estimate for one worker of the pool's shape: ``static_ctx`` at
batch 1 for prefill, ``static_gen`` at (context, batch) for decode. Files are cached by model, system,
AIConfigurator's version and the engine version its data was measured on, parallelism and grid under
``$DYNCC_CACHE_DIR/twin`` (default ``~/.cache/dyncc/twin``), only when that directory is ours alone (as the
template cache), so a second run reads the file and starts no AIConfigurator.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from dyncc.aic import runner
from dyncc.aic.mapping import Worker
from dyncc.compiler.timing_file import npz_problem
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.engines import configuring, engines


class Grid(msgspec.Struct, frozen=True):
    """Where the timing is sampled: prefill ISLs, and decode KV tokens x context lengths."""

    prefill_isl: tuple[int, ...]
    decode_kv_tokens: tuple[int, ...]
    decode_context: tuple[int, ...]

    @classmethod
    def around(cls, isl: int, osl: int, max_batch: int, points: int = 6) -> Grid:
        """A grid covering a workload of ``isl``/``osl`` up to ``max_batch`` requests per worker, with the
        workload's own lengths on it (the mocker interpolates between points)."""
        top = isl + osl
        prefill = _spread(64, max(isl * 2, 128), points) | {isl}
        context = _spread(64, top * 2, points) | {isl, isl + osl // 2, top}
        kv = _spread(64, max(top * max_batch, 128), points + 2) | {isl, top}
        return cls(tuple(sorted(prefill)), tuple(sorted(kv)), tuple(sorted(context)))

    def decode_points(self) -> list[tuple[int, int]]:
        """(context, batch) per grid cell, in cell order; a cell with fewer KV tokens than one request's
        context is one request of that many tokens."""
        out = []
        for kv in self.decode_kv_tokens:
            for ctx in self.decode_context:
                out.append((min(ctx, kv), max(1, round(kv / ctx))))
        return out


def _spread(low: int, high: int, n: int) -> set[int]:
    """``n`` roughly geometric integers from ``low`` to ``high``."""
    if high <= low or n < 2:
        return {low, high}
    ratio = (high / low) ** (1 / (n - 1))
    return {int(round(low * ratio**i)) for i in range(n)}


def aic_engine(name: str) -> runner.Backend:
    """The registered engine AIConfigurator calls ``name``, as a request to it names the engine."""
    found = next((b for b in (e.aic() for e in engines()) if b is not None and b.name == name), None)
    assert found is not None, f"no registered engine is AIConfigurator's {name!r}"
    return found


def stand_in_backend() -> str:
    """AIConfigurator's backend name for the engine the mock workers stand in for: whose step times they take."""
    mock = next(e for e in engines() if e.mock)
    name = configuring(mock).aic_backend
    assert name is not None, "the engine the mock engine stands in for declares no aic_backend"
    return name


class PoolTiming(msgspec.Struct, frozen=True):
    """One pool's worker shape on one system: what a timing file is for."""

    model: str
    system: str
    worker: Worker
    is_moe: bool = False
    backend: str = msgspec.field(default_factory=stand_in_backend)  # the engine timed, as AIConfigurator names it

    def key(self, grid: Grid) -> dict[str, Any]:
        return {
            "model": self.model,
            "system": self.system,
            "aiconfigurator": runner.AIC_VERSION,
            f"{self.backend}_data": aic_engine(self.backend).version,  # hashed into the file name
            "parallel": self.worker.key(),
            "grid": msgspec.structs.asdict(grid),
        }

    def file_name(self, grid: Grid) -> str:
        digest = hashlib.sha256(json.dumps(self.key(grid), sort_keys=True).encode()).hexdigest()[:16]
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", self.model).strip("-")[:60]
        return f"{slug}-{self.system}-{self.worker.key()}-{digest}.npz"

    def estimate_args(self) -> dict[str, Any]:
        w = self.worker
        args: dict[str, Any] = {"tp_size": w.tp, "pp_size": w.pp, "attention_dp_size": w.dp}
        if self.is_moe:
            args.update(moe_tp_size=w.moe_tp, moe_ep_size=w.moe_ep)
        return args


def cache_dir() -> Path | None:
    """``$DYNCC_CACHE_DIR/twin`` (empty variable: no cache), else ``$XDG_CACHE_HOME`` or ``~/.cache``; None
    unless ours alone: owned by us, mode 0700, in a base only we can write (else another user could swap
    a timing file under us)."""
    base = os.environ.get("DYNCC_CACHE_DIR")
    if base is None:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dyncc")
    if not base:
        return None
    directory = os.path.join(base, "twin")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        base_stat, dir_stat = os.stat(base), os.lstat(directory)
    except OSError:
        return None
    base_ours = base_stat.st_uid == os.geteuid() and not base_stat.st_mode & 0o022
    dir_ours = stat.S_ISDIR(dir_stat.st_mode) and dir_stat.st_uid == os.geteuid() and not dir_stat.st_mode & 0o077
    return Path(directory) if base_ours and dir_ours else None


def npz_bytes(grid: Grid, prefill_ttft_ms: list[float], decode_itl_ms: list[float]) -> bytes:
    """The mocker's NPZ for these samples (``decode_itl_ms`` in :meth:`Grid.decode_points` order)."""
    import numpy as np

    kv, ctx = len(grid.decode_kv_tokens), len(grid.decode_context)
    if len(prefill_ttft_ms) != len(grid.prefill_isl) or len(decode_itl_ms) != kv * ctx:
        raise ValueError("timing samples do not match the grid")
    arrays = {
        "prefill_isl": np.asarray(grid.prefill_isl, dtype=float),
        "prefill_ttft_ms": np.asarray(prefill_ttft_ms, dtype=float),
        "decode_active_kv_tokens": np.asarray(grid.decode_kv_tokens, dtype=float),
        "decode_context_length": np.asarray(grid.decode_context, dtype=float),
        "decode_itl": np.asarray(decode_itl_ms, dtype=float).reshape(kv, ctx),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types the keyword arrays as allow_pickle
    return buf.getvalue()


def _write_private(path: Path, data: bytes) -> None:
    """Atomically: a 0600 temporary file beside ``path``, renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cached(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    ours = stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077
    return ours and npz_problem(path) is None  # a damaged entry is made again, not used


class TimingFile(msgspec.Struct, frozen=True):
    path: Path
    cached: bool  # read from the cache: AIConfigurator was not started


def timing_file(
    pool: PoolTiming,
    grid: Grid,
    *,
    out_dir: Path | None = None,
    timeout: float = runner.DEFAULT_TIMEOUT_S,
    progress: runner.Progress | None = None,
) -> TimingFile:
    """The pool's timing NPZ: from the cache when there, else from AIConfigurator (then cached). Without a
    usable cache the file goes to ``out_dir`` (a fresh private temporary directory if none)."""
    directory = cache_dir()
    name = pool.file_name(grid)
    if directory is not None and _cached(directory / name):
        return TimingFile(directory / name, True)
    engine = aic_engine(pool.backend)
    args = {
        "model": pool.model,
        "system": pool.system,
        "backend_version": engine.version,
        "prefill_isl": list(grid.prefill_isl),
        "decode_points": grid.decode_points(),
        **pool.estimate_args(),
    }
    where = runner.Failure(path=("pools",), what="AIConfigurator's static estimate")
    result = runner.run("static_grid", args, timeout=timeout, progress=progress, failure=where, engine=engine)
    data = npz_bytes(grid, result["prefill_ttft_ms"], result["decode_itl_ms"])
    target_dir = directory or out_dir or Path(tempfile.mkdtemp(prefix="dyncc-twin-"))
    target = target_dir / name
    _write_private(target, data)
    (target_dir / (name[:-4] + ".json")).write_text(json.dumps(pool.key(grid), indent=2, sort_keys=True) + "\n")
    return TimingFile(target, False)


def check_npz(path: Path) -> None:
    """Refuse (DYN912) a file the mocker would misread: the five arrays, finite, positive, sizes that agree."""
    problem = npz_problem(path)
    if problem is not None:
        raise DiagnosticError(
            [Diagnostic("DYN912", f"{path} {problem}", path=("mocker_timing",), hint="regenerate it")]
        )
