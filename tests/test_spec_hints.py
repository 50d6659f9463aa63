"""Hints say what to change given what was written: a number written as a string loses its quotes and a
string YAML read as a number gains them (DYN012); a value that differs from an allowed one only in case is
named (DYN014)."""

from __future__ import annotations

import pytest

from dyncc.deployment import load_spec_text
from dyncc.diagnostics import DiagnosticError

HEAD = "apiVersion: dyncc/v1\nname: t\n"
MODEL = "model: {path: Qwen/Qwen3-0.6B}\n"


def refusal(body: str) -> tuple[str, str]:
    with pytest.raises(DiagnosticError) as exc:
        load_spec_text(HEAD + body, "t.yaml")
    (found,) = exc.value.diagnostics
    return found.code, found.hint or ""


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (MODEL + 'pools: {agg: {replicas: "2"}}\n', "remove the quotes: 2 is a number here"),
        (MODEL + 'pools: {agg: {engine: {free_gpu_memory_fraction: "0.9"}}}\n', "remove the quotes: 0.9"),
        (MODEL + 'pools: {agg: {attention_dp: "true"}}\n', "remove the quotes: write true"),
        (MODEL + "pools: {agg: {replicas: 2.0}}\n", "write 2"),
        (MODEL + 'pools: {agg: {replicas: "two"}}\n', "write a whole number without quotes"),
        (MODEL + "pools: {agg: {replicas: null}}\n", "leave the key out for its default"),
        ("model: {path: Qwen/Qwen3-0.6B, served_name: 2}\npools: {agg: {}}\n", 'quote it: "2"'),
        ("model: {path: Qwen/Qwen3-0.6B, revision: 1.10}\npools: {agg: {}}\n", "quote it as written"),
        (MODEL + "image: true\npools: {agg: {}}\n", 'quote it: "true"'),
    ],
)
def test_a_wrong_type_hint_follows_what_was_given_and_what_is_taken(body, hint):
    code, found = refusal(body)
    assert code == "DYN012" and hint in found, found
    assert "quote strings that look like numbers" not in found


@pytest.mark.parametrize(
    ("body", "suggestion"),
    [
        (MODEL + "router: {mode: KV}\npools: {agg: {}}\n", "kv"),
        (MODEL + "router: {mode: Round-Robin}\npools: {agg: {}}\n", "round-robin"),
        (MODEL + "speculative: {mode: MTP}\npools: {agg: {}}\n", "mtp"),
        (MODEL + "kv_transfer: {backend: nixl}\npools: {prefill: {}, decode: {}}\n", "NIXL"),
    ],
)
def test_an_enum_value_in_the_wrong_case_is_named(body, suggestion):
    code, found = refusal(body)
    assert code == "DYN014" and found.startswith(f"did you mean `{suggestion}`?"), found
