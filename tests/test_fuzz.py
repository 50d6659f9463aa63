"""Property-based fuzzing: valid specs, mutated every way we can think of, must each end in a
successful build or in coded errors with a location — never in any other exception.

DYNCC_FUZZ_CASES sets how many (default 10,000 per run, split over the two generators below);
benchmarks/fuzz.sh runs 200,000.
"""

from __future__ import annotations

import json
import os
import re

import yaml
from conftest import FUZZ_STATS, run_dyncc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dyncc.api import render_targets
from dyncc.compiler import check_spec, compile_spec
from dyncc.diagnostics import DiagnosticError, has_errors
from dyncc.spec import load_spec_text

TOTAL = int(os.environ.get("DYNCC_FUZZ_CASES", "10000"))
STRUCTURED = TOTAL * 4 // 5
TEXTUAL = TOTAL - STRUCTURED
CODE = re.compile(r"^DYN\d{3}$")


safe_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
hostile = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    safe_text,
    st.sampled_from(
        [
            "$(touch /tmp/pwn)",
            "`id`",
            "a;b",
            "x && y",
            "*",
            "\n",
            "",
            " ",
            "🚀",
            "NaN",
            "~",
            "0x1F",
            "yes",
            "1e309",
            "-0",
        ]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(safe_text, st.integers(), max_size=3),
    st.integers(min_value=1, max_value=300).map(lambda depth: json.loads("[" * depth + "]" * depth)),
)


@st.composite
def pools(draw):
    def pool():
        p = {"replicas": draw(st.integers(1, 4)), "tensor_parallel": draw(st.sampled_from([1, 2, 4, 8]))}
        if draw(st.booleans()):
            p["expert_parallel"] = draw(st.sampled_from([1, 2, 4]))
        if draw(st.booleans()):
            p["attention_dp"] = draw(st.booleans())
        if draw(st.booleans()):
            p["engine"] = {
                "max_batch_size": draw(st.integers(1, 512)),
                "tokens_per_block": draw(st.sampled_from([16, 32, 64])),
                "kv_cache_dtype": draw(st.sampled_from(["auto", "fp8"])),
                "cuda_graphs": draw(st.booleans()),
            }
        if draw(st.booleans()):
            p["env"] = {"TRTLLM_ENABLE_PDL": "1"}
        return p

    if draw(st.booleans()):
        return {"agg": pool()}
    return {"prefill": pool(), "decode": pool()}


@st.composite
def valid_specs(draw) -> dict:
    spec = {
        "apiVersion": "dyncc/v1",
        "name": draw(st.sampled_from(["a", "qwen3-disagg", "deepseek-r1"])),
        "model": {
            "path": draw(st.sampled_from(["Qwen/Qwen3-0.6B", "deepseek-ai/DeepSeek-R1"])),
            "moe": draw(st.sampled_from([True, False, None])),
        },
        "cluster": {"gpus_per_node": draw(st.sampled_from([4, 8])), "nodes": draw(st.integers(1, 8))},
        "pools": draw(pools()),
    }
    if draw(st.booleans()):
        spec["router"] = {"mode": draw(st.sampled_from(["kv", "round-robin", "random"]))}
    if draw(st.booleans()):
        spec["speculative"] = draw(
            st.sampled_from([{"mode": "mtp", "draft_len": 2}, {"mode": "eagle3", "draft_model": "d", "draft_len": 3}])
        )
    if draw(st.booleans()):
        spec["kv_transfer"] = {"backend": draw(st.sampled_from(["NIXL", "UCX", "DEFAULT"]))}
    if draw(st.booleans()):
        spec["migration"] = {"limit": draw(st.integers(0, 5))}
    return spec


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_specs(draw) -> str:
    spec = draw(valid_specs())
    for _ in range(draw(st.integers(0, 3))):
        paths = [p for p in _paths(spec) if p]
        path = draw(st.sampled_from(paths))
        parent = spec
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["delete", "replace", "unknown-key"]))
        if action == "delete" and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif action == "unknown-key" and isinstance(parent, dict):
            parent[draw(safe_text) or "x"] = draw(hostile)
        else:
            parent[path[-1]] = draw(hostile)
    return yaml.safe_dump(spec, allow_unicode=True, sort_keys=False)


@st.composite
def mangled_text(draw) -> str | bytes:
    text = yaml.safe_dump(draw(valid_specs()), sort_keys=False)
    action = draw(st.sampled_from(["truncate", "insert", "binary", "empty", "indent", "duplicate"]))
    cut = draw(st.integers(0, len(text)))
    if action == "truncate":
        return text[:cut]
    if action == "insert":
        return (
            text[:cut]
            + draw(
                st.sampled_from(
                    [
                        ":",
                        "- ",
                        "{",
                        "[",
                        "\t",
                        "'",
                        '"',
                        "&a ",
                        "*a",
                        "!!python/object ",
                        "\x00",
                        "\ufeff",
                        "%YAML 9.9\n",
                    ]
                )
            )
            + text[cut:]
        )
    if action == "binary":
        return draw(st.binary(max_size=200))
    if action == "empty":
        return draw(st.sampled_from(["", "\n", "---\n", "...\n", "# only a comment\n", "null\n"]))
    if action == "indent":
        lines = text.splitlines()
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        lines[i : i + 1] = ["   " + line for line in lines[i : i + 1]]
        return "\n".join(lines)
    return text + text


def run_case(text: str | bytes) -> None:
    """One case through the whole pipeline, in process; anything but a build or coded errors fails."""
    FUZZ_STATS["cases"] += 1
    try:
        try:
            loaded = load_spec_text(text, "fuzz.yaml")
            _, _, diagnostics = check_spec(loaded)
            if has_errors(diagnostics):
                _assert_coded(diagnostics)
                FUZZ_STATS["rejected"] += 1
                return
            render_targets(compile_spec(loaded), ["all"])
            FUZZ_STATS["built"] += 1
        except DiagnosticError as exc:
            _assert_coded(exc.diagnostics)
            FUZZ_STATS["rejected"] += 1
    except BaseException:
        FUZZ_STATS["failed"] += 1
        raise


def _assert_coded(diagnostics) -> None:
    assert diagnostics
    for d in diagnostics:
        assert CODE.match(d.code), d
        assert d.location is not None and d.location.line >= 1 and d.location.column >= 1, d


FUZZ_SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)


@settings(max_examples=STRUCTURED, **FUZZ_SETTINGS)
@given(mutated_specs())
def test_mutated_specs_build_or_fail_with_codes(text):
    run_case(text)


@settings(max_examples=TEXTUAL, **FUZZ_SETTINGS)
@given(mangled_text())
def test_mangled_text_builds_or_fails_with_codes(text):
    run_case(text)


_any_case = mutated_specs().map(str.encode) | mangled_text().map(lambda t: t if isinstance(t, bytes) else t.encode())


@settings(max_examples=1, **FUZZ_SETTINGS)
@given(st.lists(_any_case, min_size=150, max_size=150))
def test_cli_exit_status_is_0_1_or_2_on_fuzzed_files(cases):
    """A sample of fuzzed files through the real CLI in one process: JSON report, exit 0/1, no traceback."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, case in enumerate(cases):
            path = Path(tmp) / f"case{i}.yaml"
            path.write_bytes(case)
            files.append(path)
        proc = run_dyncc("validate", "--format", "json", *files, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["files"]) == 150
    for entry in report["files"]:
        assert entry["valid"] or all(CODE.match(d["code"]) for d in entry["diagnostics"])
