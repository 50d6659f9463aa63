"""Property-based fuzzing: valid specs, mutated every way we can think of, must each end in a
successful build or in coded errors with a location — never in any other exception.

Deterministic by default: the `deterministic` hypothesis profile (conftest) derandomizes, so every run tries the
same cases and a failure is a real defect that fails again. `benchmarks/fuzz.sh` picks the `explore`
profile (DYNCC_HYPOTHESIS_PROFILE=explore) for new random cases. DYNCC_FUZZ_CASES sets how many cases
the two `slow` tests run (default 10,000, split between the generators); the fast lane runs a sample
of each generator and every regression below.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import TypeVar

import pytest
import yaml
from conftest import FUZZ_STATS, assert_no_traceback, run_dyncc
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dyncc.api import render_targets
from dyncc.compiler import check_spec, compile_spec
from dyncc.deployment import load_spec_text
from dyncc.diagnostics import DiagnosticError, has_errors

TOTAL = int(os.environ.get("DYNCC_FUZZ_CASES", "10000"))
STRUCTURED = TOTAL * 4 // 5
TEXTUAL = TOTAL - STRUCTURED
SAMPLE = 100  # cases per generator in the fast lane
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


# --- YAML's own features: directives, tags, anchors and aliases, merge keys, encodings -------------

DIRECTIVES = [
    "%YAML 9.9\n",
    "%YAML 1.1\n",
    "%YAML 1.2\n%YAML 1.2\n",
    "%YAML abc\n",
    "%YAML 99999999999999999999.1\n",
    "%TAG ! tag:example.com,2000:\n",
    "%TAG !e! tag:example.com,2000:app/\n",
    "%TAG !e! a:\n%TAG !e! b:\n",
    "%TAG !x! %%\n",
    "%FOO bar baz\n",
]
# Put before a value (`key: TAG value`); with a block value they tag the whole mapping.
TAGS = [
    "!!python/object/apply:os.system",
    "!!python/object/new:os.system",
    "!!python/name:os.system",
    "!!python/tuple",
    "!custom",
    "!e!thing",
    "!<tag:yaml.org,2002:str>",
    "!<tag:example.com,2000:x>",
    "!%ZZ",
    "!ünï",
    "!!set",
    "!!omap",
    "!!pairs",
    "!!binary",
    "!!timestamp",
    "!!bool",
    "!!int",
    "!!float",
    "!!null",
    "!!str",
    "!!seq",
    "!!map",
]
MERGE_VALUES = ["*a", "[*a]", "{replicas: 2}", "{}", "5", "abc", "[1, 2]", "*nope", "~"]
LAUGHS = "".join(f"x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(8))
VALUE_LINE = re.compile(r"^(\s*(?:- )?[^\s:#'\"][^:]*): (\S.*)$")  # `key: value` on one line
BLOCK_LINE = re.compile(r"^(\s*[^\s:#'\"][^:]*):$")  # `key:` with the value below


def _encodings(text: str) -> list[str | bytes]:
    """The same document in odd encodings and line breaks (lazily listed: each is cheap)."""
    accented = text.replace("name: ", "name: café-", 1)
    return [
        "\ufeff" + text,
        text[: len(text) // 2] + "\ufeff" + text[len(text) // 2 :],
        b"\xef\xbb\xbf" + text.encode(),
        ("\ufeff" + text).encode("utf-16-le"),
        ("\ufeff" + text).encode("utf-16-be"),
        text.encode("utf-16-le"),
        ("\ufeff" + text).encode("utf-32"),
        accented.encode("latin-1"),
        accented.replace("-", "\u2019").encode("cp1252"),
        text.replace("\n", "\r\n"),
        text.replace("\n", "\r"),
        text.replace("\n", "\x85"),
        text.replace("\n", "\u2028"),
        text.replace("\n", "\u2029"),
        text.replace("\n", "\n\x00", 1),
    ]


@st.composite
def yaml_feature_text(draw) -> str | bytes:
    """A valid spec as YAML text, with one of YAML's less used features added where a value goes."""
    lines = yaml.safe_dump(draw(valid_specs()), sort_keys=False).splitlines()
    values = [i for i, line in enumerate(lines) if VALUE_LINE.match(line)]
    blocks = [i for i, line in enumerate(lines) if BLOCK_LINE.match(line) and i + 1 < len(lines)]
    action = draw(st.sampled_from(["directive", "tag", "anchor", "merge", "encoding", "documents", "laughs"]))
    if action == "directive":
        separator = draw(st.sampled_from(["---\n", "--- ", ""]))  # "" : a directive with no document start
        return draw(st.sampled_from(DIRECTIVES)) + separator + "\n".join(lines) + "\n"
    if action == "tag":
        i = draw(st.sampled_from(values + blocks))
        lines[i] = re.sub(r":( |$)", f": {draw(st.sampled_from(TAGS))}\\1", lines[i], count=1)
    elif action == "anchor":
        first, second = draw(st.sampled_from(values)), draw(st.sampled_from(values))
        anchored = VALUE_LINE.match(lines[first])
        assert anchored
        lines[first] = f"{anchored.group(1)}: &a {anchored.group(2)}"
        aliased = VALUE_LINE.match(lines[second])
        assert aliased
        target = draw(st.sampled_from(["*a", "*nope", "*a ", "[*a, *a]", "&a *a", "&b x"]))
        if draw(st.booleans()):  # the alias as the key instead of the value
            lines[second] = re.sub(r"\S[^:]*:", f"{target.strip()} :", lines[second], count=1)
        else:
            lines[second] = f"{aliased.group(1)}: {target}"
    elif action == "merge":
        i = draw(st.sampled_from(blocks))
        indent = re.match(r"\s*", lines[i + 1])
        assert indent is not None
        if draw(st.booleans()) and values:
            j = draw(st.sampled_from(values))
            anchored = VALUE_LINE.match(lines[j])
            assert anchored
            lines[j] = f"{anchored.group(1)}: &a {anchored.group(2)}"
        lines.insert(i + 1, f"{indent.group(0)}<<: {draw(st.sampled_from(MERGE_VALUES))}")
    elif action == "encoding":
        return draw(st.sampled_from(_encodings("\n".join(lines) + "\n")))
    elif action == "documents":
        text = "\n".join(lines) + "\n"
        return draw(
            st.sampled_from(
                [text + "---\n" + text, "---\n" + text + "...\n", text + "...\njunk: 1\n", "--- !!map\n" + text]
            )
        )
    else:
        lines.append(LAUGHS.rstrip("\n"))
        lines.append("x: [" + ", ".join(["*l7"] * 9) + "]")
    return "\n".join(lines) + "\n"


@st.composite
def mangled_text(draw) -> str | bytes:
    text = yaml.safe_dump(draw(valid_specs()), sort_keys=False)
    action = draw(st.sampled_from(["truncate", "insert", "binary", "empty", "indent", "duplicate", "yaml-feature"]))
    cut = draw(st.integers(0, len(text)))
    if action == "yaml-feature":
        return draw(yaml_feature_text())
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
                        "<<: ",
                        "? ",
                        "!!set ",
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


# --- regressions: every crash the fuzzer found, replayed on every run ------------------------------

_SPEC = "apiVersion: dyncc/v1\nname: t\nmodel: {path: m}\n"
REGRESSIONS: list[str | bytes] = [
    # ruamel's constructors for these tags assume a collection / a bool literal: AttributeError, KeyError.
    _SPEC + "pools: !!set x\n",
    _SPEC + "pools: !!omap x\n",
    _SPEC + "pools: {agg: {attention_dp: !!bool maybe}}\n",
    _SPEC + "pools: {!!bool agg: {}}\n",
    "apiVersion: dyncc/v1\nname: !!bool qwen3-agg\nmodel: {path: m}\npools: {agg: {}}\n",
    # Keys a merge key (`<<`) brought in have no position of their own: locating them failed (KeyError,
    # TypeError in SourceMap.locate) instead of pointing at the `<<` line.
    _SPEC + "pools:\n  <<: {replicas: 2}\n  agg: {}\n",
    "apiVersion: dyncc/v1\nname: t\nmodel: &a {path: m}\npools:\n  agg:\n    <<: *a\n",
    # An alias chain that expands to 9^8 values (HEAD loader: minutes and gigabytes, never an answer).
    _SPEC + "pools: {agg: {}}\n" + LAUGHS + "x: [" + ", ".join(["*l7"] * 9) + "]\n",
]

T = TypeVar("T", bound=Callable[..., None])


def with_regressions(test: T) -> T:
    """Each regression as an explicit @example: run first, in every profile, whatever the case count."""
    for case in REGRESSIONS:
        test = example(case)(test)
    return test


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


# The profile (conftest) sets derandomize, database, deadline and health checks; only the counts are here.


@settings(max_examples=SAMPLE)
@given(mutated_specs())
def test_a_sample_of_mutated_specs_build_or_fail_with_codes(text):
    run_case(text)


@settings(max_examples=SAMPLE)
@with_regressions
@given(mangled_text())
def test_a_sample_of_mangled_text_builds_or_fails_with_codes(text):
    run_case(text)


@settings(max_examples=SAMPLE)
@given(yaml_feature_text())
def test_a_sample_of_yaml_features_build_or_fail_with_codes(text):
    run_case(text)


@pytest.mark.slow
@settings(max_examples=STRUCTURED)
@given(mutated_specs())
def test_mutated_specs_build_or_fail_with_codes(text):
    run_case(text)


@pytest.mark.slow
@settings(max_examples=TEXTUAL)
@with_regressions
@given(mangled_text())
def test_mangled_text_builds_or_fails_with_codes(text):
    run_case(text)


_any_case = mutated_specs().map(str.encode) | mangled_text().map(lambda t: t if isinstance(t, bytes) else t.encode())


@settings(max_examples=1)
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
    assert_no_traceback(proc)
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["files"]) == 150
    for entry in report["files"]:
        assert entry["valid"] or all(CODE.match(d["code"]) for d in entry["diagnostics"])
