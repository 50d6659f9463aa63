"""The mocker timing file: what Dynamo's mock engine reads as its timing (``--planner-profile-data``), and
the one check of it that validate (DYN912) and the timed twin (:mod:`dyncc.twin`) share.

The file is read through the input gate (a regular file, bounded) and checked as those bytes, so what is
checked is what a build copies. Kept out of ``rules/``: a rule reads this module, the twin too.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path
from typing import Any

from dyncc.spec.input_gate import UnreadableFile, read_regular

BUILTIN = "builtin"
AICONFIGURATOR = "aiconfigurator"
# The arrays Dynamo 1.6.1's mock engine reads (its Rust perf model, `--planner-profile-data`).
NPZ_KEYS = ("prefill_isl", "prefill_ttft_ms", "decode_active_kv_tokens", "decode_context_length", "decode_itl")
AXES = ("prefill_isl", "decode_active_kv_tokens", "decode_context_length")  # interpolated over
MAX_TIMING_FILE_BYTES = 16 * 1024 * 1024  # a grid of a few thousand points is kilobytes; this bounds the read
# No engine step takes 31 years; the mock engine's clock overflows near 1.8e22 ms, which scaling
# (mocker_speedup_ratio) and linear extrapolation past the grid can reach from far smaller values.
MAX_STEP_MS = 1e12
_MAX_NPY_HEADER = 10_000  # bytes: an array header is a hundred


def timing_path(value: str, spec_dir: Path | None) -> Path:
    """A `mocker_timing` file, a relative one read from the spec file's directory."""
    path = Path(value)
    return path if path.is_absolute() or spec_dir is None else spec_dir / path


def read_timing_file(path: Path) -> tuple[bytes | None, str | None]:
    """(the file's bytes, None) when Dynamo's mock engine can run on it, else (None, why not): the one check
    DYN912 and the twin both use. The file is read once, through the input gate (a regular file of at most
    16 MiB), and checked as those bytes, so what is checked is what gets copied into the build."""
    try:
        data = read_regular(path, MAX_TIMING_FILE_BYTES)
    except UnreadableFile as exc:
        return None, (
            f"is {exc.reason}, over what a timing file can be" if exc.too_large else f"cannot be read ({exc.reason})"
        )
    problem = timing_problem(data)
    return (data, None) if problem is None else (None, problem)


def npz_problem(path: Path) -> str | None:
    """Why the mock engine could not run on ``path`` as its timing (None: it can)."""
    return read_timing_file(path)[1]


def timing_problem(data: bytes) -> str | None:
    """Why Dynamo 1.6.1's mock engine would refuse (or misread) these NPZ bytes; None when it reads them.

    Checked as its loader reads them (measured against it: tests/test_twin.py runs the mock engine itself on
    each case): the five arrays, each a stored or deflated member `NAME` or `NAME.npy` holding float64 (either
    byte order) of exactly the bytes its header's shape needs; the three grids 1-dimensional with at least 2
    points, strictly increasing; prefill_ttft_ms one time per prefill_isl point and decode_itl KV tokens x
    context lengths. Beyond the loader: every value finite and each step time positive and at most
    ``MAX_STEP_MS`` (the engine takes NaN or negative times as 0 ms, and overflows its clock on huge ones)."""
    arrays = _arrays(data)
    if isinstance(arrays, str):
        return arrays
    for key in NPZ_KEYS:
        want = 2 if key == "decode_itl" else 1
        if arrays[key].ndim != want:
            return f"holds {key} with {arrays[key].ndim} dimension(s); the mock engine reads it as {want}"
    for key in AXES:
        if arrays[key].size < 2:
            return f"holds {arrays[key].size} {key} point(s); the mock engine interpolates between at least 2"
    isl, kv, ctx = (arrays[key].size for key in AXES)
    if arrays["prefill_ttft_ms"].size != isl:
        return f"holds {arrays['prefill_ttft_ms'].size} prefill_ttft_ms values for {isl} prefill_isl points"
    if arrays["decode_itl"].shape != (kv, ctx):
        return (
            f"holds decode_itl of shape {arrays['decode_itl'].shape}; the mock engine needs decode_active_kv_tokens "
            f"x decode_context_length = ({kv}, {ctx})"
        )
    import numpy as np

    for key in NPZ_KEYS:
        if not np.all(np.isfinite(arrays[key])):
            return f"holds values in {key} that are not finite"
    for key in AXES:
        if not np.all(np.diff(arrays[key]) > 0):
            return f"holds {key} values that are not strictly increasing; the mock engine refuses the file at start"
    for key in ("prefill_ttft_ms", "decode_itl"):
        if not np.all(arrays[key] > 0):
            return f"holds step times in {key} that are not positive (the mock engine would run them in no time)"
        if np.any(arrays[key] > MAX_STEP_MS):
            return f"holds step times in {key} over {MAX_STEP_MS:.0e} ms (31 years)"
    return None


def _arrays(data: bytes) -> dict[str, Any] | str:
    """The five arrays, or why they cannot be read as the mock engine reads them."""
    try:
        import numpy as np
    except ImportError:  # numpy comes with Dynamo, which runs the mock engine
        return "cannot be checked: numpy is not installed (Dynamo brings it)"
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return f"is not an NPZ (zip) file ({str(exc)[:120] or type(exc).__name__})"
    with archive:
        # The last of two members of one name is the one a zip reader finds; the bare name is tried first.
        members = {info.filename: info for info in archive.infolist()}
        found = {key: members.get(key) or members.get(key + ".npy") for key in NPZ_KEYS}
        missing = [key for key, info in found.items() if info is None]
        if missing:
            return f"is not a mocker timing NPZ: it lacks {', '.join(missing)}"
        infos = {key: info for key, info in found.items() if info is not None}
        # An NPZ is a zip: a small file can inflate to gigabytes, so its members' sizes are read first.
        inflated = sum(info.file_size for info in infos.values())
        if inflated > MAX_TIMING_FILE_BYTES:
            return f"inflates to {inflated} bytes, over the {MAX_TIMING_FILE_BYTES} a timing file can hold"
        arrays = {}
        for key, info in infos.items():
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                return f"holds {key} compressed or encrypted in a way the mock engine cannot read (store or deflate it)"
            try:
                with archive.open(info) as member:
                    raw = member.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
                return f"holds a {key} member that cannot be read ({str(exc)[:120] or type(exc).__name__})"
            array = _npy_array(raw, np)
            if isinstance(array, str):
                return f"holds {key} {array}"
            arrays[key] = array
    return arrays


def _npy_array(raw: bytes, np: Any) -> Any:
    """A `.npy` member as a float64 array, reading the header first: a shape that claims more than the bytes
    hold (or fewer) is refused without allocating it, as the mock engine refuses it."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=_MAX_NPY_HEADER)
        elif version in ((2, 0), (3, 0)):  # 3.0 differs only in a UTF-8 header, ASCII for a float array
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=_MAX_NPY_HEADER)
        else:
            return f"in .npy format {version}, which the mock engine does not read"
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        return f"with an unreadable .npy header ({str(exc)[:120] or type(exc).__name__})"
    if dtype.kind != "f" or dtype.itemsize != 8 or dtype.names is not None or dtype.subdtype is not None:
        return f"as {dtype.str} values; the mock engine reads float64 (<f8) only"
    needed = math.prod(shape) * dtype.itemsize
    held = len(raw) - stream.tell()
    if held != needed:
        return f"with {held} bytes of data for a shape {shape} that needs {needed}"
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=stream.tell())
    return array.reshape(shape, order="F" if fortran else "C").astype(float)
