#!/usr/bin/env python3
"""A Dynamo release's command-line flags, read from its own argument parsers (issue 31).

    scripts/release_flags.py 1.6.1                  the release's entry for dynamo-releases.json, as JSON
    scripts/release_flags.py 1.6.1 --previous FILE  ... with notes.changes_vs_previous against FILE's releases
    scripts/release_flags.py 1.6.1 --parse worker -- --model-path m --disaggregation-mode agg
                                                    {"ok": ..., "error": ...}: what that release's parser says
    scripts/release_flags.py 1.6.1 --download       only fetch and unpack the wheels (scripts/setup.sh)

The `ai-dynamo==V` wheel and the `ai-dynamo-runtime==V` wheel of the same version (for `dynamo._core`: the
tool/reasoning parser registry, the mock engine's defaults) are downloaded once into the cache
(`.cache/wheels/`, `--cache`) and unpacked there, never installed. Each component then runs in a fresh
interpreter that sees only that release's `dynamo` package: third-party modules the parsers import but do
not need (TensorRT-LLM, torch, ...) are inert stand-ins, and no DYN_*/ETCD*/NATS* variable is set, so the
defaults are the release's own. The component's parser function runs until its first parse call, where
the parser is taken and every action read (the field legend of dynamo-releases.json's "source").

`--parse` runs the same function to its end on the given command line, as `python3 -m dynamo.<component>`
would before starting anything: the release's own rewrites, leftover handling (`--trtllm.a.b v` on 1.1.0+,
router-advertisement flags on 1.5.0+, "Unknown arguments" otherwise) and validation apply. Tests call
`parse_command_lines` for many lines at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from release_flags_child import MODULES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / ".cache" / "wheels"
COMPONENTS = ("worker", "frontend", "mocker")
# The child each component is read in (a script of its own: it runs in a fresh, isolated interpreter).
CHILD = Path(__file__).resolve().parent / "release_flags_child.py"
CHILD_TIMEOUT_S = 180


class ReleaseError(Exception):
    """The release's wheels could not be fetched or read."""


# --- wheels -----------------------------------------------------------------------------------------------


def _wheel_tags(name: str) -> set[str]:
    """Every tag of a wheel file name (pyver-abi-platform, each part possibly dotted)."""
    pyvers, abis, plats = name[: -len(".whl")].split("-")[-3:]
    return {f"{p}-{a}-{q}" for p in pyvers.split(".") for a in abis.split(".") for q in plats.split(".")}


def _installable(wheels: Iterable[Path]) -> Path | None:
    """The wheel this interpreter can load, most specific tag first (what pip would pick)."""
    from packaging.tags import sys_tags

    order = {str(tag): rank for rank, tag in enumerate(sys_tags())}
    ranked = [(min((order[t] for t in _wheel_tags(w.name) if t in order), default=None), w) for w in wheels]
    usable = sorted((rank, str(w)) for rank, w in ranked if rank is not None)
    return Path(usable[0][1]) if usable else None


def wheels_for(version: str, cache: Path = DEFAULT_CACHE) -> tuple[Path, Path] | None:
    """The cached ai-dynamo and ai-dynamo-runtime wheels of `version`, or None when either is missing."""
    found = []
    for dist in ("ai_dynamo", "ai_dynamo_runtime"):
        wheel = _installable(cache.glob(f"{dist}-{version}-*.whl"))
        if wheel is None:
            return None
        found.append(wheel)
    return found[0], found[1]


def download(version: str, cache: Path = DEFAULT_CACHE) -> tuple[Path, Path]:
    """Both wheels of `version` in the cache (pip download, no dependencies; nothing done when present)."""
    have = wheels_for(version, cache)
    if have:
        return have
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    command += ["-d", str(cache), f"ai-dynamo=={version}", f"ai-dynamo-runtime=={version}"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    have = wheels_for(version, cache)
    if proc.returncode != 0 or have is None:
        raise ReleaseError(f"pip download of ai-dynamo {version} failed: {proc.stderr.strip()[-800:]}")
    return have


def unpacked(version: str, cache: Path = DEFAULT_CACHE) -> Path:
    """The directory holding both wheels' files (`dynamo/...`), unpacked once and reused."""
    wheels = wheels_for(version, cache)
    if wheels is None:
        raise ReleaseError(f"no ai-dynamo {version} wheels in {cache}: run scripts/release_flags.py {version}")
    target = cache / "unpacked" / version
    names = "\n".join(w.name for w in wheels)

    def complete() -> bool:
        stamp = target / ".complete"
        return stamp.exists() and stamp.read_text() == names

    if complete():
        return target
    # Unpacked beside the target and renamed into place: an interrupted run leaves no half tree, and of two
    # processes unpacking at once (test workers) the first rename wins and the other's copy is dropped.
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=target.parent))
    try:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(partial)
        (partial / ".complete").write_text(names)
        if target.exists() and not complete():  # unpacked from other wheels of that version
            shutil.rmtree(target)
        with contextlib.suppress(OSError):
            partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if not complete():
        raise ReleaseError(f"could not unpack the ai-dynamo {version} wheels into {target}")
    return target


def trtllm_pin(dynamo_wheel: Path) -> str | None:
    """The TensorRT-LLM version the wheel's `trtllm` extra pins."""
    with zipfile.ZipFile(dynamo_wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    match = re.search(r"^Requires-Dist: tensorrt-llm\s*\(?==\s*([^\s;)]+)\)?.*extra == .trtllm.", text, re.M)
    return match.group(1) if match else None


# --- the parent: one fresh interpreter per component --------------------------------------------------------


def _run_child(tree: Path, request: dict[str, Any]) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYN_", "ETCD", "NATS"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="release-flags.") as work:
        proc = subprocess.run(
            [sys.executable, "-I", str(CHILD), str(tree)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=work,  # whatever a parser module writes lands here
            env=env,
            timeout=CHILD_TIMEOUT_S,
        )
    if proc.returncode != 0:
        raise ReleaseError(f"reading {request['component']} of {tree.name} failed:\n{proc.stderr.strip()[-3000:]}")
    return json.loads(proc.stdout)


def extract(version: str, cache: Path = DEFAULT_CACHE) -> dict[str, Any]:
    """The release's entry: TensorRT-LLM pin, the three flag sets, and notes on where they came from."""
    dynamo_wheel, _ = download(version, cache)
    tree = unpacked(version, cache)
    entry: dict[str, Any] = {"trtllm_pin": trtllm_pin(dynamo_wheel)}
    notes: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    for component in COMPONENTS:
        found = _run_child(tree, {"mode": "extract", "component": component})
        entry[f"{component}_flags"] = found["flags"]
        module, function = found["function"]
        notes[component] = f"python3 -m {MODULES[component]}; parser {module.replace('.', '/')}.py {function}()"
        short = module.rsplit(".", 1)[-1]
        constants.update({f"{component}:{short}.{k}": v for k, v in found["constants"].items()})
    notes["default_constants"] = constants
    entry["notes"] = notes
    return entry


def parse_command_lines(
    version: str, items: Sequence[tuple[str, Sequence[str]]], cache: Path = DEFAULT_CACHE
) -> list[dict[str, Any]]:
    """Each (component, argv) through release `version`'s own parser function: {"ok", "error"} in order.
    The wheels must be in the cache already (scripts/setup.sh, or one run of this script)."""
    tree = unpacked(version, cache)
    results: list[dict[str, Any]] = [{}] * len(items)
    for component in COMPONENTS:
        mine = [i for i, (c, _) in enumerate(items) if c == component]
        if not mine:
            continue
        argvs = [[str(a) for a in items[i][1]] for i in mine]
        answers = _run_child(tree, {"mode": "parse", "component": component, "argvs": argvs})
        for i, answer in zip(mine, answers):
            results[i] = answer
    unknown = {c for c, _ in items} - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown component(s) {sorted(unknown)}: use {', '.join(COMPONENTS)}")
    return results


def changes_vs_previous(version: str, entry: dict[str, Any], releases: dict[str, Any]) -> dict[str, Any] | None:
    """What differs from the newest release before `version` in `releases` (dynamo-releases.json)."""
    from packaging.version import InvalidVersion, Version

    def release(v: str) -> Version:  # "source", "flag_help" sort first and are never a release
        try:
            return Version(v)
        except InvalidVersion:
            return Version("0.0.0.dev0")

    older = [v for v in releases if release(v) < Version(version) and (releases[v] or {}).get("worker_flags")]
    if not older:
        return None
    previous = max(older, key=release)
    out: dict[str, Any] = {"previous": previous}
    for component in COMPONENTS:
        new, old = entry[f"{component}_flags"], releases[previous][f"{component}_flags"] or {}
        diff = {
            "added": [f for f in new if f not in old],
            "removed": [f for f in old if f not in new],
            "spec_changed": [f for f in new if f in old and new[f] != old[f]],
        }
        diff = {k: v for k, v in diff.items() if v}
        if diff:
            out[component] = diff
    if len(out) == 1:
        out["none"] = "all three flag sets identical"
    return out


def to_json(entry: Any) -> str:
    """As dynamo-releases.json writes it: the letter after the slash of /tmp, /work, /farm escaped, so the
    file holds no literal absolute path (json parsers return the original text)."""
    text = json.dumps(entry, indent=1, ensure_ascii=False)
    for word in ("tmp", "work", "farm"):
        text = text.replace("/" + word, f"/\\u{ord(word[0]):04x}{word[1:]}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    rest: list[str] = []
    if "--" in argv:
        at = list(argv).index("--")
        argv, rest = list(argv[:at]), list(argv[at + 1 :])
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="scripts/release_flags.py")
    cli.add_argument("version", help="ai-dynamo release on PyPI, e.g. 1.6.1")
    cli.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="wheel cache (default .cache/wheels)")
    cli.add_argument("--previous", type=Path, help="dynamo-releases.json: add notes.changes_vs_previous")
    cli.add_argument("--parse", choices=COMPONENTS, help="parse the command line after -- instead")
    cli.add_argument("--download", action="store_true", help="only fetch and unpack the wheels (once)")
    args = cli.parse_args(argv)
    try:
        if args.download:
            download(args.version, args.cache)
            print(unpacked(args.version, args.cache))
            return 0
        if args.parse:
            download(args.version, args.cache)
            (result,) = parse_command_lines(args.version, [(args.parse, rest)], args.cache)
            print(json.dumps(result))
            return 0 if result["ok"] else 1
        entry = extract(args.version, args.cache)
    except ReleaseError as exc:
        print(f"release_flags: {exc}", file=sys.stderr)
        return 2
    if args.previous:
        changes = changes_vs_previous(args.version, entry, json.loads(args.previous.read_text()))
        if changes:
            entry["notes"]["changes_vs_previous"] = changes
    print(to_json(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
