"""A spec's `sweep:` as points: one concrete spec per combination of the swept values, and what `validate`
checks of each. The API's `validate` and the sweep tool (:mod:`dyncc.tools.sweep`, which builds and runs the
points) share it; it sits below the API, which passes its own check in.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
from pydantic import ValidationError

from dyncc.compiler.rules import sweep_problems
from dyncc.deployment import load_spec_text, model_for
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.spec import LoadedSpec
from dyncc.spec.loader import load_yaml_data, read_model_facts
from dyncc.yaml_text import dump_yaml

# `dyncc.api.check`: the rules, placement and the targets' checks of one loaded spec.
Check = Callable[..., list[Diagnostic]]


class Point(msgspec.Struct, dict=True):  # dict: the cached spec_text
    index: int
    name: str
    values: dict[str, Any]
    data: dict[str, Any]  # the point's spec as the user wrote the base, the swept values set
    codes: list[str] = msgspec.field(default_factory=list)
    messages: list[str] = msgspec.field(default_factory=list)
    directory: Path | None = None
    results: list[dict] = msgspec.field(default_factory=list)
    gpus: int = 0  # GPUs the point's deployment stands for
    timed_by: str | None = None  # the mock engine's timing (`aiconfigurator` or a file); None: built-in or real

    @property
    def valid(self) -> bool:
        return not self.codes

    @functools.cached_property
    def spec_text(self) -> str:
        """The point's spec file; written only when it is built (dumping every point of a large spec costs)."""
        return dump_yaml(self.data)

    def label(self) -> str:
        return ", ".join(f"{k}={_short(v)}" for k, v in self.values.items())


def _short(value: Any) -> str:
    """A swept value as a label: a pools mapping as its topology (``1xprefill(tp2)+1xdecode(tp2)``), other
    mappings and lists as compact JSON."""
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        if set(value) <= {"agg", "prefill", "decode", "encode"}:
            return "+".join(
                f"{pool.get('replicas', 1)}x{role}(tp{pool.get('tensor_parallel', 1)})" for role, pool in value.items()
            )
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return str(value)


def _with_values(data: dict[str, Any], values: dict[str, Any], name: str) -> dict[str, Any]:
    """``data`` with each dotted key set to its value and ``name`` set: the mappings on those paths are
    copied, the rest is shared with ``data`` (a deep copy per point costs as much as the spec is large)."""
    top = {**data, "name": name}
    for dotted, value in values.items():
        node = top
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[leaf] = value
    return top


def point_name(base: str, index: int) -> str:
    """``<base>-p<index>``, the base shortened so the suffix survives the 63-character limit (cutting the
    suffix instead would give every point of a long-named spec the same name)."""
    suffix = f"-p{index}"
    return base[: 63 - len(suffix)].rstrip("-") + suffix


def expand_loaded(raw: bytes | str, base: LoadedSpec, dynamo_version: str | None = None) -> list[Point]:
    """The points of a spec already loaded (``base``) from ``raw``; ``dynamo_version`` replaces each point's
    `dynamo:` section, over a swept one too (as `build --dynamo-version` replaces the spec's), so the point's
    spec file says the release it was built for."""
    # Counted before anything is expanded: a few lines of lists can multiply into millions of points.
    problems = sweep_problems(base.spec.sweep)
    if problems:
        raise DiagnosticError([base.located(d) for d in problems])
    data, _ = load_yaml_data(raw, base.source.file)
    sweep = data.pop("sweep", {}) or {}
    keys = sorted(sweep)
    points = []
    for index, combination in enumerate(itertools.product(*(sweep[k] for k in keys))):
        values = dict(zip(keys, combination))
        name = point_name(base.spec.name, index)
        point_data = _with_values(data, values, name)
        if dynamo_version is not None:
            point_data["dynamo"] = {"version": dynamo_version}
        points.append(Point(index, name, values, point_data))
    return points


def check_points(points: list[Point], base: LoadedSpec, targets: Iterable[str], check: Check) -> None:
    """What `validate` checks of each point (the loader, the rules, the targets' checks: ``check`` is
    :func:`dyncc.api.check`, passed in as this module sits below the API): an invalid point keeps its error
    codes, as the sweep tool's ``build_points`` would give it. The points are not rendered (up to 512 renders
    of every target would make `validate` and the language server slow): a point over an output size limit
    (DYN510-513) is found by `sweep` when it builds it."""
    validated = base.spec.model_dump(by_alias=True, exclude_unset=True)
    validated.pop("sweep", None)
    wanted = tuple(targets)
    for point in points:
        try:
            loaded = _load_point(point, base, validated)
            mark_invalid(point, [d for d in check(loaded, wanted, render=False) if d.is_error])
        except DiagnosticError as exc:
            mark_invalid(point, list(exc.diagnostics))


def _load_point(point: Point, base: LoadedSpec, validated: dict[str, Any]) -> LoadedSpec:
    """The point as a loaded spec. Parsing each point's YAML would cost the base's parse once per point (up
    to a second for a large spec, times 512 points), so the swept values are set on the base's validated
    data instead; a point whose values the model refuses is loaded from its text, for the loader's codes."""
    data = _with_values(validated, point.values, point.name)
    try:
        # The point's own model: a swept key may write a target section the base spec leaves unwritten.
        spec = model_for(data).model_validate(data)
    except ValidationError:
        return load_spec_text(point.spec_text, f"<sweep point p{point.index}>", base_dir=base.base_dir)
    facts = base.facts if spec.model == base.spec.model else read_model_facts(spec, base.base_dir, base.source)
    return msgspec.structs.replace(base, spec=spec, facts=facts, notices=())


def mark_invalid(point: Point, errors: list[Diagnostic]) -> None:
    point.codes = sorted({d.code for d in errors})
    point.messages = [f"{d.code}: {d.message}" for d in errors]


# Invalid points a summary names one by one; the rest are counted.
SUMMARY_POINTS = 8


def summary(points: list[Point]) -> list[Diagnostic]:
    """DYN804 when no point of the sweep is valid (a sweep that builds nothing is an error); DYN805, a
    warning, naming the points that are invalid when others are valid (those are skipped, not fatal)."""
    invalid = [p for p in points if not p.valid]
    if not invalid:
        return []
    named = "; ".join(f"p{p.index} ({p.label()}): {', '.join(p.codes)}" for p in invalid[:SUMMARY_POINTS])
    if len(invalid) > SUMMARY_POINTS:
        named += f"; and {len(invalid) - SUMMARY_POINTS} more"
    if len(invalid) == len(points):
        return [
            Diagnostic(
                "DYN804",
                f"every point of the sweep is invalid, so it would build nothing: {named}",
                path=("sweep",),
                hint="fix the swept values or the base spec; `dyncc sweep -o DIR` writes each point's errors "
                "to DIR/index.json",
            )
        ]
    return [
        Diagnostic(
            "DYN805",
            f"{len(invalid)} of {len(points)} sweep points are invalid and would be skipped: {named}",
            path=("sweep",),
            hint="drop the values that make them invalid, or keep them to see which fail",
            severity="warning",
        )
    ]
