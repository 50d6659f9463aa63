"""Sweeps (DYN801-803): a `sweep:` that can be expanded: bounded, settable, non-overlapping keys."""

from __future__ import annotations

import math
from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.rules.base import rule
from dyncc.diagnostics import Diagnostic

# Every point is a full compile and build (and with --run, a deployment started and benchmarked for
# minutes): 512 points is a day of --run; past it the product of the lists is almost always a mistake.
MAX_SWEEP_POINTS = 512
# Keys a point gets from dyncc itself, not from the sweep.
UNSWEEPABLE_KEYS = ("apiVersion", "name", "sweep")


def sweep_points(sweep: dict[str, list]) -> int:
    """How many points a sweep expands to, without expanding it."""
    return math.prod(len(values) for values in sweep.values())


def sweep_problems(sweep: dict[str, list]) -> list[Diagnostic]:
    """What makes a `sweep:` unexpandable: too many points, keys inside other keys, keys dyncc sets."""
    problems = []
    count = sweep_points(sweep)
    if count > MAX_SWEEP_POINTS:
        sizes = " x ".join(str(len(v)) for v in sweep.values())
        problems.append(
            Diagnostic(
                "DYN801",
                f"the sweep expands to {count} points ({sizes}); dyncc builds at most {MAX_SWEEP_POINTS}",
                path=("sweep",),
                hint="sweep fewer keys or fewer values at once, or run several sweeps",
            )
        )
    keys = sorted(sweep)
    for key in keys:
        root = key.split(".")[0]
        if root in UNSWEEPABLE_KEYS:
            problems.append(
                Diagnostic(
                    "DYN802",
                    f"sweep key `{key}` cannot be swept: dyncc sets `{root}` of every point itself",
                    path=("sweep", key),
                    hint="sweep a deployment setting (pools.*, router.*, engine values, ...)",
                )
            )
        inner = next((other for other in keys if other.startswith(key + ".")), None)
        if inner is not None:
            problems.append(
                Diagnostic(
                    "DYN803",
                    f"sweep keys `{key}` and `{inner}` overlap: each point would set one over the other",
                    path=("sweep", inner),
                    hint=f"sweep either `{key}` as a whole or fields inside it, not both",
                )
            )
    return problems


def _sweep_problems_with(code: str, graph: DeploymentGraph) -> Iterator[Diagnostic]:
    yield from (d for d in sweep_problems(graph.spec.sweep) if d.code == code)


@rule("DYN801", "sweep-points-bounded")
def sweep_points_bounded(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A `sweep:` expands to at most MAX_SWEEP_POINTS points (counted before expanding)."""
    yield from _sweep_problems_with("DYN801", graph)


@rule("DYN802", "sweep-key-settable")
def sweep_keys_settable(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Sweep keys name settings of the deployment, not `name`, `apiVersion` or `sweep` (dyncc sets those)."""
    yield from _sweep_problems_with("DYN802", graph)


@rule("DYN803", "sweep-keys-distinct")
def sweep_keys_distinct(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """No sweep key lies inside another one (one would silently overwrite the other)."""
    yield from _sweep_problems_with("DYN803", graph)
