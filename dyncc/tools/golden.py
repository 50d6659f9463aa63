"""What a spec compiles to, as one {relative path: text} mapping over every target and both version
profiles. The golden-output test and scripts/update_golden.py share it, so both see the same files."""

from __future__ import annotations

from pathlib import Path

from dyncc.api import render_targets, with_dynamo_version
from dyncc.compiler import compile_spec
from dyncc.compiler.plan import FileContent
from dyncc.deployment import load_spec

PROFILE_VERSIONS = {"dynamo-1.x": None, "dynamo-0.x": "0.5.1"}


def render_example_outputs(spec_path: Path) -> dict[str, FileContent]:
    files: dict[str, FileContent] = {}
    for label, version in PROFILE_VERSIONS.items():
        loaded = with_dynamo_version(load_spec(spec_path), version)
        rendered, _ = render_targets(compile_spec(loaded), ["all"])
        for target, target_files in rendered.items():
            for name, text in target_files.items():
                files[f"{label}/{target}/{name}"] = text
    return files
