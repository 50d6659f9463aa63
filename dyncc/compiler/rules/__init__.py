"""Validation rules over the deployment graph, one module per family of codes.

DYN0xx are load errors (``dyncc.spec``); 1xx parallelism (:mod:`.parallelism`) and values (:mod:`.values`); 2xx :mod:`.disaggregation`; 3xx :mod:`.routing`;
4xx :mod:`.topology` and :mod:`.gpus` (node groups); GPU memory, DYN140-142, :mod:`.memory`; 5xx are the targets' own checks (``dyncc.targets``); 6xx :mod:`.planner`;
7xx :mod:`.versions`; 8xx :mod:`.sweeps`; the mock engine's timing, 91x, :mod:`.mock_timing`. Importing a family module registers its rules in :data:`RULES`; :mod:`.engine_rules` adds each
engine's own (its engine config, the engine version deployed).
"""

from __future__ import annotations

from dyncc.compiler.rules import (  # noqa: F401 - importing a family registers its rules
    disaggregation,
    engine_rules,
    gpus,
    memory,
    mock_timing,
    parallelism,
    planner,
    routing,
    sweeps,
    topology,
    values,
    versions,
)
from dyncc.compiler.rules.base import RULES, Rule, finding, rule, run_rules
from dyncc.compiler.rules.sweeps import MAX_SWEEP_POINTS, sweep_points, sweep_problems
from dyncc.compiler.rules.values import secret_finding, secret_shape, secret_words

__all__ = [
    "MAX_SWEEP_POINTS",
    "RULES",
    "Rule",
    "finding",
    "rule",
    "run_rules",
    "secret_finding",
    "secret_shape",
    "secret_words",
    "sweep_points",
    "sweep_problems",
]
