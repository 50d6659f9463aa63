"""Version profiles (DYN701-706): the Dynamo version has a profile, the TensorRT-LLM named is the one it ships,
the image is that version's, and the version has the features the spec uses."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.profiles import DYNAMO_1, TRTLLM_PINNED_BY_DYNAMO, profile_for, supported_list
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic


@rule("DYN701", "known-dynamo-version")
def dynamo_version_has_a_profile(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The Dynamo version is one dyncc has a profile for: a release whose TensorRT-LLM key set it carries."""
    version = graph.spec.dynamo.version
    if profile_for(version) is not None:
        return
    pinned = TRTLLM_PINNED_BY_DYNAMO.get(version)
    why = (
        f"it ships TensorRT-LLM {pinned}, whose engine keys dyncc does not carry"
        if pinned
        else "dyncc does not know which TensorRT-LLM it ships"
    )
    yield finding(
        f"no profile for Dynamo {version}: {why}, so no file could say exactly what it deploys",
        ("dynamo", "version"),
        f"supported: {supported_list()}",
    )


@rule("DYN705", "trtllm-version-is-pinned")
def trtllm_version_is_the_pinned_one(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """`dynamo.trtllm`, when given, is the TensorRT-LLM the Dynamo version ships (its key set is the one checked)."""
    spec, profile = graph.spec, graph.profile
    wanted = spec.dynamo.trtllm
    if wanted is None or profile_for(spec.dynamo.version) is None or wanted == profile.trtllm_version:
        return
    yield finding(
        f"dynamo.trtllm {wanted}, but Dynamo {profile.dynamo_version} ships TensorRT-LLM {profile.trtllm_version}: "
        "its engine configs are written and checked for that one",
        ("dynamo", "trtllm"),
        f"remove dynamo.trtllm, or set it to {profile.trtllm_version}; supported: {supported_list()}",
    )


@rule("DYN702", "disaggregation-strategy-removed")
def disaggregation_strategy_needs_0x(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """`decode_first`/`prefill_first` exist only in Dynamo 0.x; 1.0 removed them."""
    spec, profile = graph.spec, graph.profile
    strategy = spec.router.disaggregation_strategy
    if strategy is None:
        return
    if not profile.disaggregation_strategy:
        yield finding(
            f"router.disaggregation_strategy {strategy} is not in Dynamo {spec.dynamo.version}: "
            "--disaggregation-strategy was removed in Dynamo 1.0 (Nov 2025); the frontend now drives "
            "prefill, then decode",
            ("router", "disaggregation_strategy"),
            "remove it, or deploy Dynamo 0.x (dynamo.version: 0.5.1) where it exists",
        )
    elif not graph.pair():
        yield finding(
            "router.disaggregation_strategy needs prefill and decode pools", ("router", "disaggregation_strategy")
        )


@rule("DYN703", "feature-needs-newer-dynamo")
def feature_exists_in_version(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Features the chosen Dynamo version lacks are errors naming the version that has them."""
    spec, profile = graph.spec, graph.profile
    newer = DYNAMO_1.dynamo_version
    if spec.router.conditional_disagg and not profile.conditional_disagg:
        yield finding(
            f"router.conditional_disagg is not in Dynamo {spec.dynamo.version}: it came with Dynamo 1.x",
            ("router", "conditional_disagg"),
            f"remove it, or deploy Dynamo {newer}",
        )
    if spec.request_plane is not None and not profile.request_plane_flag:
        yield finding(
            f"request_plane is not in Dynamo {spec.dynamo.version}: `--request-plane` came with Dynamo 1.x "
            "(0.x sends requests over NATS)",
            ("request_plane",),
            f"remove it, or deploy Dynamo {newer}",
        )
    if spec.planner.enabled and spec.planner.mode not in profile.planner_modes:
        has = (
            "no planner entry point (`python3 -m dynamo.planner`)"
            if not profile.planner_modes
            else (f"only the {'/'.join(profile.planner_modes)} planner")
        )
        yield finding(
            f"planner mode {spec.planner.mode} is not in Dynamo {spec.dynamo.version}: its image has {has}",
            ("planner", "enabled"),
            f"remove the planner, or deploy Dynamo {newer}",
        )
    if spec.kvbm.enabled and not profile.kvbm_connector:
        yield finding(
            f"kvbm is not in Dynamo {spec.dynamo.version}: its TensorRT-LLM worker has no `--connector kvbm` "
            "(the parser refuses the flag)",
            ("kvbm", "enabled"),
            f"remove it, or deploy Dynamo {newer}",
        )
    if spec.router.reset_states and spec.router.mode == "kv" and not profile.router_reset_flag:
        yield finding(
            f"router.reset_states is not in Dynamo {spec.dynamo.version}: `--router-reset-states` existed in "
            "Dynamo 0.5.0 to 1.3.1 and was removed in 1.4.0 with the router's durable state (a 1.4+ router "
            "starts empty every time)",
            ("router", "reset_states"),
            "remove it: the router keeps no state to reset; or deploy a release from 0.5 to 1.3",
        )
    if spec.router.overlap_score_credit is not None and not profile.overlap_score_credit:
        yield finding(
            f"router.overlap_score_credit is not in Dynamo {spec.dynamo.version}: the KV router's overlap credit "
            "came with Dynamo 1.2.0 (0.5's `--kv-overlap-score-weight` weighs overlap differently)",
            ("router", "overlap_score_credit"),
            f"remove it, or deploy Dynamo {newer}",
        )
    if spec.model.chat_template is not None and not profile.chat_template_flag:
        yield finding(
            f"model.chat_template is not in Dynamo {spec.dynamo.version}: the worker's `--custom-jinja-template` "
            "came with Dynamo 0.6.0",
            ("model", "chat_template"),
            f"remove it (the checkpoint's own template is used), or deploy Dynamo {newer}",
        )
    if spec.mocker_timing != "builtin" and not profile.mocker_timing_file:
        yield finding(
            f"mocker_timing is not in Dynamo {spec.dynamo.version}: its mock engine has no "
            "`--planner-profile-data` to read step times from (it came with Dynamo 1.x)",
            ("mocker_timing",),
            f"remove it, or deploy Dynamo {newer}",
        )


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


@rule("DYN127", "reply-parsing-under-mock")
def reply_parsing_under_the_mock_engine(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The mock engine takes no parser or chat-template options: a mock run is built without them, said once."""
    spec = graph.spec
    if spec.worker_runtime != "mocker":
        return
    for field in ("tool_call_parser", "reasoning_parser", "chat_template"):
        if getattr(spec.model, field) is not None:
            yield finding(
                f"model.{field}: Dynamo {spec.dynamo.version}'s mock engine has no such option; the mock run "
                "serves unparsed replies with its tiny model's template",
                ("model", field),
                "expected for a mock run; the TensorRT-LLM workers (worker_runtime: trtllm) apply it",
                severity="warning",
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
