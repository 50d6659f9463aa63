"""The memory checks' hints (DYN140, DYN141) suggest only what the spec does not already do: no FP8 KV cache
to a spec that has one, only checkpoint formats smaller than the checkpoint's own, max_num_tokens only when
the working set is what overflows, a larger GPU only when one dyncc knows holds the worker."""

from __future__ import annotations

import pytest
import yaml
from conftest import EXAMPLES

from dyncc.compiler import check_spec
from dyncc.deployment import load_spec_text


def memory_findings(spec: dict) -> dict[str, list]:
    _, _, diagnostics = check_spec(load_spec_text(yaml.safe_dump(spec, sort_keys=False), "t.yaml"))
    found: dict[str, list] = {}
    for d in diagnostics:
        found.setdefault(d.code, []).append(d)
    return found


def r1_example(**changes) -> dict:
    spec = yaml.safe_load((EXAMPLES / "deepseek_r1_mtp_disagg.yaml").read_text())
    spec["cluster"].update(changes)
    return spec


def test_an_fp8_checkpoint_is_not_told_to_use_fp8():
    # DeepSeek-R1 is an FP8 checkpoint: on a B200 its TP4 prefill worker does not fit.
    (prefill,) = memory_findings(r1_example(gpu_type="B200"))["DYN140"]
    assert "use an NVFP4 checkpoint" in prefill.hint and "FP8" not in prefill.hint, prefill.hint
    assert "TP8 fits" in prefill.hint and "B300 fits" in prefill.hint


def test_weights_that_alone_overflow_the_gpu_are_not_told_to_lower_max_num_tokens():
    found = memory_findings(r1_example(gpu_type="H200"))["DYN140"]
    decode = next(d for d in found if d.path[1] == "decode")  # 159 GiB of weights on a 140 GiB GPU
    prefill = next(d for d in found if d.path[1] == "prefill")  # 172.6 GiB + a 23.5 GiB working set on 140
    assert "max_num_tokens" not in decode.hint and "max_num_tokens" not in prefill.hint, decode.hint


def test_an_fp8_kv_cache_is_not_suggested_to_a_spec_that_has_one():
    # TP8 on two H200 nodes: the decode pool's FP8 KV cache holds fewer full-length requests than its batch.
    spec = r1_example(gpu_type="H200", nodes=2)
    for pool in spec["pools"].values():
        pool["tensor_parallel"] = pool["expert_parallel"] = 8
    capped = [d for d in memory_findings(spec).get("DYN141", []) if d.path[-1] == "max_batch_size"]
    assert capped and all("FP8 KV cache" not in d.hint for d in capped), [d.hint for d in capped]
    for pool in spec["pools"].values():
        pool["engine"]["kv_cache_dtype"] = "auto"  # the checkpoint's BF16 KV cache: FP8 would halve it
    capped = [d for d in memory_findings(spec).get("DYN141", []) if d.path[-1] == "max_batch_size"]
    assert capped and all("use an FP8 KV cache" in d.hint for d in capped), [d.hint for d in capped]


@pytest.mark.parametrize(
    ("model", "formats"),
    [
        ("meta-llama/Llama-3.1-70B-Instruct", "use an FP8 or NVFP4 checkpoint"),
        ("nvidia/Llama-3.1-70B-Instruct-FP8", "use an NVFP4 checkpoint"),
        ("nvidia/DeepSeek-R1-FP4", None),
    ],
)
def test_the_checkpoint_formats_suggested_are_smaller_than_the_checkpoints_own(model, formats):
    spec = {"apiVersion": "dyncc/v1", "name": "t", "model": {"path": model}, "cluster": {"gpu_type": "L40S"}}
    spec["pools"] = {"agg": {"engine": {"max_seq_len": 8192}}}
    (found,) = memory_findings(spec)["DYN140"]
    if formats is None:
        assert "checkpoint" not in found.hint, found.hint
    else:
        assert formats in found.hint, found.hint
