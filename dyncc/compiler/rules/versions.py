"""Version profiles (DYN701-704): the Dynamo version has a profile and has the features the spec uses."""

from __future__ import annotations

import re
from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.profiles import DYNAMO_1, PROFILES, profile_for
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic


@rule("DYN701", "known-dynamo-version")
def dynamo_version_has_a_profile(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The Dynamo version names a family dyncc has a profile for."""
    version = graph.spec.dynamo.version
    if profile_for(version) is None:
        known = ", ".join(f"{p.family} (e.g. {p.dynamo_default})" for p in PROFILES)
        yield finding(f"no profile for Dynamo {version}", ("dynamo", "version"), f"dyncc knows {known}")


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
    newer = DYNAMO_1.dynamo_default
    if spec.router.conditional_disagg and not profile.conditional_disagg:
        yield finding(
            f"router.conditional_disagg is not in Dynamo {spec.dynamo.version}: it came with Dynamo 1.x",
            ("router", "conditional_disagg"),
            f"remove it, or deploy Dynamo {newer}",
        )


IMAGE_TAG_VERSION = re.compile(r":v?(\d+\.\d+\.\d+)[^/]*$")


@rule("DYN704", "image-matches-version")
def image_tag_matches_dynamo_version(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A container image tagged with another Dynamo version runs other flags than the ones written."""
    spec = graph.spec
    match = IMAGE_TAG_VERSION.search(spec.image or "")
    if match and match.group(1) != spec.dynamo.version:
        yield finding(
            f"image tag {match.group(1)} but dynamo.version {spec.dynamo.version}: the flags and manifests "
            f"are written for {spec.dynamo.version}",
            ("image",),
            "use the image of the version deployed, or set dynamo.version to the image's",
            severity="warning",
        )
