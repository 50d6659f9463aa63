"""Version profiles (DYN701-706): the Dynamo version has a release file, the image is that version's, and the
version has the features the spec uses (the engine version it pins is the engine's to check: DYN705, DYN707)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.plan import frontend_flags
from dyncc.compiler.profiles import profile_for, profiles, supported_list
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic, YamlPath, format_yaml_path
from dyncc.releases import Component, availability, first_with, releases, version_or_none


@rule("DYN701", "known-dynamo-version")
def dynamo_version_has_a_profile(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The Dynamo version is a release dyncc has a file for (its parsers' flags, the engine versions it pins)."""
    version = graph.spec.dynamo.version
    if profile_for(version) is not None:
        return
    yield finding(
        f"no release file for Dynamo {version}: dyncc does not know the flags its parsers accept, so no file "
        "could say exactly what it deploys",
        ("dynamo", "version"),
        _nearest_release(version)
        + f"dyncc has {supported_list()}; a release it lacks is one data file, read from that release's wheel "
        "(docs/architecture.md, `Releases are data`)",
    )


def _nearest_release(version: str) -> str:
    """What to suggest for a version without a file: the releases of its line, the newest when it is newer
    than all, else the closest spelling."""
    known = [r.dynamo for r in releases()]
    parsed = version_or_none(version)
    if parsed is not None:
        line = [r.dynamo for r in releases() if r.version.release[:2] == parsed.release[:2]]
        if parsed > releases()[-1].version:
            return f"the newest release dyncc has is {known[-1]}; "
        if line:
            return f"did you mean {' or '.join(f'`{v}`' for v in line[-2:])}? "
    close = difflib.get_close_matches(version, known, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`? " if close else ""


def _absent(
    graph: DeploymentGraph, what: str, component: Component, option: str, path: YamlPath, value: str | None = None
) -> Iterator[Diagnostic]:
    """DYN703 for a spec feature whose flag (or flag value) the deployed release's parser lacks."""
    profile = graph.profile
    rel = profile.release
    if rel is None:
        return
    if rel.accepts(component, option, value):
        return
    when, deploy = availability(component, option, profile.dynamo_version, value)
    choices = rel.choices(component, option) if value is not None else ()
    lacks = (
        f"its {component}'s `{option}` takes {', '.join(choices)}, not {value}"
        if choices
        else f"its {component} has no `{option}{'' if value is None else ' ' + value}`"
    )
    yield finding(
        f"{what} is not in Dynamo {profile.dynamo_version}: {lacks} ({when}); the parser refuses it at start-up",
        path,
        f"remove it, or {deploy}" if deploy else "remove it",
    )


def _frontend_flags_absent(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """DYN703 for each frontend option the spec asks for (the plan's own list: every target writes these) that
    the release's frontend lacks, or whose value is not among its choices, at the setting that asks for it."""
    rel = graph.profile.release
    if rel is None:
        return
    for flag in frontend_flags(graph.spec, graph.router, graph.profile):
        what = format_yaml_path(flag.path)
        if rel.has("frontend", flag.option) and flag.value is not None:  # the flag is there; is its value?
            yield from _absent(graph, f"{what} {flag.value}", "frontend", flag.option, flag.path, flag.value)
        else:
            yield from _absent(graph, what, "frontend", flag.option, flag.path)


def _worker_migration_length_absent(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Releases that migrate on the worker (before 1.0) take no `--migration-max-seq-len` there: the length
    came with the frontend's migration (the frontend's flags are checked with the rest of them)."""
    profile, migration = graph.profile, graph.spec.migration
    rel = profile.release
    if rel is None or profile.migration_on != "worker" or not migration.limit or migration.max_seq_len is None:
        return
    if rel.has("worker", "--migration-max-seq-len"):
        return
    first = first_with("frontend", "--migration-max-seq-len")
    yield finding(
        f"migration.max_seq_len is not in Dynamo {profile.dynamo_version}: its workers migrate requests and have "
        "no `--migration-max-seq-len`"
        + (f" (it came with Dynamo {first.dynamo}'s frontend)" if first else "")
        + "; the parser refuses it at start-up",
        ("migration", "max_seq_len"),
        f"remove it, or deploy Dynamo {first.dynamo} or later" if first else "remove it",
    )


@rule("DYN702", "disaggregation-strategy-removed")
def disaggregation_strategy_needs_0x(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """`decode_first`/`prefill_first` exist only in the releases whose worker has --disaggregation-strategy."""
    spec, profile = graph.spec, graph.profile
    strategy = spec.router.disaggregation_strategy
    if strategy is None:
        return
    if not profile.disaggregation_strategy:
        when, deploy = availability("worker", "--disaggregation-strategy", profile.dynamo_version)
        yield finding(
            f"router.disaggregation_strategy {strategy} is not in Dynamo {spec.dynamo.version}: its worker has no "
            f"--disaggregation-strategy ({when}); the frontend now drives prefill, then decode",
            ("router", "disaggregation_strategy"),
            f"remove it, or {deploy}" if deploy else "remove it",
        )
    elif not graph.pair():
        yield finding(
            "router.disaggregation_strategy needs prefill and decode pools", ("router", "disaggregation_strategy")
        )


@rule("DYN703", "feature-needs-newer-dynamo")
def feature_exists_in_version(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Features the chosen Dynamo release lacks are errors naming the release that has them (its parsers' flags,
    from the release files)."""
    spec, profile = graph.spec, graph.profile
    yield from _frontend_flags_absent(graph)
    yield from _worker_migration_length_absent(graph)
    if spec.request_plane is not None:
        yield from _absent(graph, "request_plane", "worker", "--request-plane", ("request_plane",))
    if spec.planner.enabled and spec.planner.mode not in profile.planner_modes:
        has = (
            "no planner entry point (`python3 -m dynamo.planner`)"
            if not profile.planner_modes
            else (f"only the {'/'.join(profile.planner_modes)} planner")
        )
        first = next((p for p in profiles() if spec.planner.mode in p.planner_modes), None)
        yield finding(
            f"planner mode {spec.planner.mode} is not in Dynamo {spec.dynamo.version}: its image has {has}",
            ("planner", "enabled"),
            "remove the planner" + (f", or deploy Dynamo {first.dynamo_version} or later" if first else ""),
        )
    if spec.kvbm.enabled:
        yield from _absent(graph, "kvbm", "worker", "--connector", ("kvbm", "enabled"), "kvbm")
    credit, most = spec.router.overlap_score_credit, profile.router_credit_max
    if credit is not None and spec.router.mode == "kv" and most is not None and credit > most:
        yield finding(
            f"router.overlap_score_credit {credit} is out of Dynamo {profile.dynamo_version}'s range: its frontend "
            f"refuses a credit over {most} at start-up",
            ("router", "overlap_score_credit"),
            f"use a value from 0 to {most}, or deploy a release whose frontend takes it",
        )
    if spec.model.chat_template is not None:
        yield from _absent(
            graph, "model.chat_template", "worker", "--custom-jinja-template", ("model", "chat_template")
        )
    for field, option in (
        ("tool_call_parser", "--dyn-tool-call-parser"),
        ("reasoning_parser", "--dyn-reasoning-parser"),
    ):
        if getattr(spec.model, field) is not None:
            yield from _absent(graph, f"model.{field}", "worker", option, ("model", field))
    if spec.pools.encode is not None:
        yield from _absent(graph, "an encode pool", "worker", "--disaggregation-mode", ("pools", "encode"), "encode")
    if spec.mocker_timing != "builtin":
        yield from _absent(graph, "mocker_timing", "mocker", "--planner-profile-data", ("mocker_timing",))


@rule("DYN125", "reply-parsers-known")
def reply_parsers_are_known(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Tool-call and reasoning parsers are names the release's parser registry has (the worker refuses others)."""
    spec, profile = graph.spec, graph.profile
    for field, known in (
        ("tool_call_parser", profile.tool_call_parsers),
        ("reasoning_parser", profile.reasoning_parsers),
    ):
        name = getattr(spec.model, field)
        if name is None or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        yield finding(
            f"model.{field} {name!r} is not a parser of Dynamo {spec.dynamo.version}: its worker's argument "
            "parser refuses the name, and the worker exits at start-up",
            ("model", field),
            (f"did you mean `{close[0]}`? " if close else "") + f"Dynamo {spec.dynamo.version} has: {', '.join(known)}",
        )


# DYN706 (a NATS request plane where nothing provides NATS) depends on the target: it is a target feature
# (dyncc.targets.base.FEATURES), so Kubernetes, whose platform provides NATS, is not warned.


# A Dynamo image tag: X.Y.Z, an optional pre-release (rcN, aN, bN, devN), an optional post-release
# (.postN: a rebuild of the same release, e.g. 0.8.1.post2) and an optional variant suffix (-arm64, -cuda13).
TAG_VERSION = re.compile(
    r"^v?(?P<release>\d+\.\d+\.\d+)(?P<pre>(?:\.?(?:rc|a|b|dev)\d+)?)(?P<post>(?:\.post\d+)?)(?:-[A-Za-z0-9_.-]+)?$"
)


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None for a digest-only or untagged reference)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def release_of(version: str) -> tuple[str, str] | None:
    """(X.Y.Z, pre-release) of a version or tag; post-releases and variant suffixes name the same release."""
    match = TAG_VERSION.match(version)
    if match is None:
        return None
    return match["release"], match["pre"].lstrip(".")


@rule("DYN704", "image-matches-version")
def image_tag_matches_dynamo_version(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A container image tagged with another Dynamo version runs other flags than the ones written."""
    spec = graph.spec
    tag = image_tag(spec.image or "")
    tagged = release_of(tag) if tag else None
    deployed = release_of(spec.dynamo.version)
    if tagged is None or deployed is None or tagged == deployed:
        return
    yield finding(
        f"image tag {tag} but dynamo.version {spec.dynamo.version}: the flags and manifests "
        f"are written for {spec.dynamo.version}",
        ("image",),
        "use the image of the version deployed, or set dynamo.version to the image's",
        severity="warning",
    )
