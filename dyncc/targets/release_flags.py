"""What a target writes on a command line, checked against the deployed release's own parser data.

The compiler checks the spec's features and its frontend flags against the release (DYN703); a target adds
flags of its own (the frontend's host and port, k8s's replica sync for several frontends) and engines write
options the spec does not name (the mock engine's limits). Here those command lines meet the release file: a
flag the release's parser would refuse is DYN514 before anything starts, naming the release that has it.
"""

from __future__ import annotations

from collections.abc import Mapping

from dyncc.compiler.plan import DeploymentPlan, Slot
from dyncc.diagnostics import Diagnostic, YamlPath
from dyncc.releases import Component, availability
from dyncc.targets.shell import Raw


def has_flag(plan: DeploymentPlan, component: Component, option: str) -> bool:
    release = plan.profile.release
    return release is None or release.has(component, option)


def frontend_host_args(plan: DeploymentPlan, host: str) -> list[str]:
    """`--http-host HOST` where the release's frontend has it (0.4.0 binds every interface, with no flag)."""
    return ["--http-host", host] if has_flag(plan, "frontend", "--http-host") else []


def command_problems(
    plan: DeploymentPlan,
    component: Component,
    argv: list,
    target: str,
    paths: Mapping[str, YamlPath] | None = None,
) -> list[Diagnostic]:
    """DYN514 for each option in ``argv`` (words after ``python3 -m dynamo.X``) the release's parser refuses,
    at the setting that wrote it (``paths``: option -> spec path), else at dynamo.version. Words the target
    fills in at run time (shell variables) are taken as the values they stand for."""
    release = plan.profile.release
    if release is None:
        return []
    words = ["0" if isinstance(w, Raw) else str(w) for w in argv]
    # A flag the release lacks names the release that has it; a value outside the choices says the choices.
    found: dict[YamlPath, list[str]] = {}
    for r in release.refusals(component, words):
        if r.kind not in ("unknown", "value"):  # a stray word here is the value of a flag refused as unknown
            continue
        problem = (
            f"{r.option} ({availability(component, r.option, release.dynamo)[0]})" if r.kind == "unknown" else r.message
        )
        listed = found.setdefault((paths or {}).get(r.option, ("dynamo", "version")), [])
        if problem not in listed:
            listed.append(problem)
    return [
        Diagnostic(
            "DYN514",
            f"the {target} target's {component} command for Dynamo {release.dynamo} has what its parser refuses: "
            + "; ".join(problems),
            path=path,
            hint="deploy a release that has it, or leave out the setting that needs it",
        )
        for path, problems in found.items()
    ]


def frontend_command_problems(
    plan: DeploymentPlan, argv: list, target: str, paths: Mapping[str, YamlPath] | None = None
) -> list[Diagnostic]:
    """DYN514 for the frontend command line a target writes (``argv``: the words after ``-m dynamo.frontend``).
    The spec's own frontend flags are the compiler's to refuse (DYN703); what is left is what the target adds,
    located at the target's setting that adds it (``paths``), else at the spec setting behind the flag."""
    return command_problems(plan, "frontend", argv, target, {**dict(plan.frontend.flag_paths), **(paths or {})})


def _probe(slot: Slot) -> object:
    """A stand-in for each slot, to check a command line before any target fills it: the parser checks options
    and choices, never paths; an optional slot (a revision) is left out."""
    return {"bootstrap_port": "1", "revision": None}.get(slot.kind, "x")


def worker_command_problems(plan: DeploymentPlan, target: str) -> list[Diagnostic]:
    """DYN514 for the first pool whose worker command has what the release's parser of its engine refuses
    (the pools' workers differ in ports and paths only)."""
    found = [
        d
        for pool in plan.pools
        for d in command_problems(plan, plan.engine.component, plan.worker_args(pool, _probe), target)
    ]
    return found[:1]


def worker_revision_problems(plan: DeploymentPlan, target: str) -> list[Diagnostic]:
    """DYN563: workers that download the hub model themselves (local, compose) need the release's worker
    `--revision` to serve model.revision; without it they would serve the main branch."""
    if not plan.model_revision or plan.model_local_dir is not None or plan.engine.offline:
        return []
    if all(pool.command.uses("revision") for pool in plan.pools):
        return []
    return [
        Diagnostic(
            "DYN563",
            f"model.revision {plan.model_revision!r}: Dynamo {plan.dynamo_version}'s worker has no --revision, so "
            f"the {target} target's workers would download and serve the main branch instead",
            path=("model", "revision"),
            hint="download that revision yourself and give model.path as its directory, or build for -t k8s "
            "(model_cache) or -t slurm (its download step fetches the revision)",
        )
    ]
