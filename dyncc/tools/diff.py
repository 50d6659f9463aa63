"""Semantic diff of two specs: what changed in the spec, and what changes on the cluster.

Flags are compared as options (``--router-mode kv`` is one change, not two tokens), engine configs
key by key, pools by replicas and GPUs, and each target's files by name. Either side can be a spec built
for another Dynamo release (:func:`compile_for_release`), so one spec compares with itself across releases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from dyncc.api import render_targets
from dyncc.compiler import Compilation, compile_spec
from dyncc.compiler.plan import DeploymentPlan
from dyncc.deployment import load_spec, load_spec_text
from dyncc.diagnostics import DiagnosticError


def compile_for_release(spec: str | Path, version: str | None) -> Compilation:
    """The spec compiled as written (``version`` None), or for Dynamo ``version`` as `dyncc migrate --to`
    rewrites it: a setting the release dropped is removed the same way, so the diff shows that too. What the
    release refuses is a :class:`DiagnosticError`, as `migrate` reports it."""
    if version is None:
        return compile_spec(load_spec(spec))
    from dyncc.tools.migrate import migrate_file

    migration = migrate_file(spec, to=version)
    if not migration.ok:
        raise DiagnosticError([*migration.refused, *migration.invalid])
    return compile_spec(load_spec_text(migration.text, str(spec), base_dir=Path(spec).parent))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    return {prefix: value}


def _spec_values(compilation: Compilation) -> dict[str, Any]:
    """Every spec value, defaults included: a value written out equal to its default (`replicas: 1`) is the
    same spec as one left out, and a change from it is a change, not an addition. Unset sections (None) and
    empty maps are left out, so a section the new spec adds reads as added."""
    values = _flatten(compilation.loaded.spec.model_dump(mode="json", by_alias=True))
    return {k: v for k, v in values.items() if v is not None and v != {}}


def _options(flags: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--a x --b`` -> ``{"--a": "x", "--b": True}``."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(flags):
        flag = flags[i]
        if i + 1 < len(flags) and not flags[i + 1].startswith("--"):
            out[flag] = flags[i + 1]
            i += 2
        else:
            out[flag] = True
            i += 1
    return out


SHOWN_PER_SECTION = 6  # values listed for a section one side lacks; the rest are counted


def _missing_ancestor(key: str, other: dict[str, Any]) -> str:
    """The outermost section of dotted ``key`` that ``other`` has nothing under (``key`` itself if none)."""
    parts = key.split(".")
    for i in range(1, len(parts)):
        prefix = ".".join(parts[:i])
        if not any(k == prefix or k.startswith(prefix + ".") for k in other):
            return prefix
    return key


def _one_side(only: dict[str, Any], other: dict[str, Any], label: str, verb: str) -> list[tuple[str, str]]:
    """Keys of one side only, a section the other side lacks as one line (a whole pool, a new section):
    (key, line) pairs."""
    sections: dict[str, dict[str, Any]] = {}
    for key in sorted(only):
        section = _missing_ancestor(key, other)
        sections.setdefault(section, {})[key[len(section) + 1 :] if key != section else ""] = only[key]
    lines = []
    for section, values in sections.items():
        if list(values) == [""]:
            lines.append((section, f"{label}{section}: {verb} {values['']!r}"))
            continue
        shown = [f"{k} {v!r}" for k, v in list(values.items())[:SHOWN_PER_SECTION]]
        more = len(values) - len(shown)
        lines.append((section, f"{label}{section}: {verb} ({', '.join(shown)}{f', and {more} more' if more else ''})"))
    return lines


def _changes(old: dict[str, Any], new: dict[str, Any], label: str) -> list[str]:
    """A value in both that differs is a change (``a -> b``); one in a single side was added or removed."""
    lines = [(k, f"{label}{k}: {old[k]!r} -> {new[k]!r}") for k in set(old) & set(new) if old[k] != new[k]]
    lines += _one_side({k: v for k, v in old.items() if k not in new}, new, label, "removed, was")
    lines += _one_side({k: v for k, v in new.items() if k not in old}, old, label, "added")
    return [line for _, line in sorted(lines)]


def _flag_changes(old: dict, new: dict, label: str) -> list[str]:
    lines = []
    for flag in sorted(set(old) | set(new)):
        if flag not in new:
            lines.append(f"{label}removed flag {flag}" + ("" if old[flag] is True else f" {old[flag]}"))
        elif flag not in old:
            lines.append(f"{label}added flag {flag}" + ("" if new[flag] is True else f" {new[flag]}"))
        elif old[flag] != new[flag]:
            lines.append(f"{label}flag {flag}: {old[flag]} -> {new[flag]}")
    return lines


def _pool_view(plan: DeploymentPlan) -> dict:
    return {p.role: p for p in plan.pools}


class SpecDiff(msgspec.Struct, frozen=True):
    lines: list[str]  # the report: a heading per part, then what changed in it
    changed: bool  # anything in the spec, the deployment or a file differs (`dyncc diff --exit-code`)


def diff_compilations(old: Compilation, new: Compilation) -> SpecDiff:
    lines = ["# spec"]
    lines += _changes(_spec_values(old), _spec_values(new), "  ")
    lines.append("# deployment")
    a, b = old.plan, new.plan
    lines += _changes(
        {"total GPUs": a.total_gpus, "nodes": a.placement.nodes_used},
        {"total GPUs": b.total_gpus, "nodes": b.placement.nodes_used},
        "  ",
    )
    lines += _flag_changes(_options(a.frontend.flags), _options(b.frontend.flags), "  frontend: ")
    pools_a, pools_b = _pool_view(a), _pool_view(b)
    for role in sorted(set(pools_a) | set(pools_b), key=["agg", "prefill", "decode", "encode"].index):
        label = f"  {role}: "
        if role not in pools_b:
            lines.append(f"{label}pool removed")
            continue
        if role not in pools_a:
            lines.append(f"{label}pool added ({pools_b[role].replicas} x {pools_b[role].gpus_per_worker} GPUs)")
            continue
        pa, pb = pools_a[role], pools_b[role]
        lines += _changes(
            {"replicas": pa.replicas, "GPUs per worker": pa.gpus_per_worker, "nodes per worker": pa.nodes_per_worker},
            {"replicas": pb.replicas, "GPUs per worker": pb.gpus_per_worker, "nodes per worker": pb.nodes_per_worker},
            label,
        )
        lines += _flag_changes(_options(pa.flags), _options(pb.flags), label)
        lines += _changes(_flatten(pa.engine_config), _flatten(pb.engine_config), f"{label}engine ")
    lines.append("# files")
    files_a, _ = render_targets(old, ["all"])
    files_b, _ = render_targets(new, ["all"])
    for target in sorted(set(files_a) | set(files_b)):
        fa, fb = files_a.get(target, {}), files_b.get(target, {})
        changed = sorted(p for p in set(fa) | set(fb) if fa.get(p) != fb.get(p))
        if target not in files_a or target not in files_b:
            lines.append(f"  {target}: " + ("no longer buildable" if target in files_a else "now buildable"))
        elif changed:
            lines.append(f"  {target}: {', '.join(changed)} change")
        else:
            lines.append(f"  {target}: unchanged")
    unchanged = [line for line in lines if line.startswith("#") or line.endswith(": unchanged")]
    return SpecDiff(lines, len(unchanged) < len(lines))
