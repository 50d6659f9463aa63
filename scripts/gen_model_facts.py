#!/usr/bin/env python3
"""Regenerate dyncc/facts/models.json: each well-known model's architecture, read by dyncc's own reader
(dyncc.facts.arch) from the model's Hugging Face config.json.

The config.json files are read from AIConfigurator 0.12.0's copies of them (its ``model_configs``
directory, installed by scripts/setup.sh in .cache/aiconfigurator); each entry names the checkpoint whose
config it is and the model card the published parameter count comes from. Run after changing MODELS:

    python3 scripts/gen_model_facts.py [MODEL_CONFIGS_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dyncc.facts.arch import arch_from_config  # noqa: E402

DEFAULT_DIR = next(
    iter(
        sorted(
            (ROOT / ".cache" / "aiconfigurator" / "lib").glob(
                "python3*/site-packages/aiconfigurator_core/model_configs"
            )
        )
    ),
    None,
)
HUB = "https://huggingface.co/"

# Hub id -> (config file stem in MODEL_CONFIGS_DIR, quant config stem or None, published total parameters in
# billions, where that number is published). Several ids share one architecture: their cards say so.
MODELS: dict[str, tuple[str, str | None, float, str]] = {
    "deepseek-ai/DeepSeek-R1": ("deepseek-ai--DeepSeek-R1", None, 671, "model card: 671B total, 37B activated"),
    "deepseek-ai/DeepSeek-R1-0528": ("deepseek-ai--DeepSeek-R1", None, 671, "model card: same architecture as R1"),
    "deepseek-ai/DeepSeek-V3": ("deepseek-ai--DeepSeek-V3", None, 671, "model card: 671B total, 37B activated"),
    "deepseek-ai/DeepSeek-V3-0324": ("deepseek-ai--DeepSeek-V3", None, 671, "model card: same architecture as V3"),
    "deepseek-ai/DeepSeek-V3.1": ("deepseek-ai--DeepSeek-V3", None, 671, "model card: 671B total, 37B activated"),
    "deepseek-ai/DeepSeek-V3.2": ("deepseek-ai--DeepSeek-V3.2", None, 671, "model card: 671B total"),
    "nvidia/DeepSeek-R1-FP4": (
        "deepseek-ai--DeepSeek-R1",
        "nvidia--DeepSeek-V3.1-NVFP4_hf_quant",
        671,
        "model card: NVFP4 quantization of DeepSeek-R1 (linear layers in transformer blocks; ModelOpt's "
        "DeepSeek NVFP4 recipe keeps attention projections in BF16, as its hf_quant_config.json lists)",
    ),
    "nvidia/DeepSeek-R1-0528-FP4": (
        "deepseek-ai--DeepSeek-R1",
        "nvidia--DeepSeek-V3.1-NVFP4_hf_quant",
        671,
        "model card: NVFP4 quantization of DeepSeek-R1-0528 (same recipe as DeepSeek-R1-FP4)",
    ),
    "nvidia/DeepSeek-V3.1-NVFP4": (
        "nvidia--DeepSeek-V3.1-NVFP4",
        "nvidia--DeepSeek-V3.1-NVFP4_hf_quant",
        671,
        "model card",
    ),
    "Qwen/Qwen3-0.6B": ("Qwen--Qwen3-0.6B", None, 0.6, "model card: 0.6B parameters"),
    "Qwen/Qwen3-1.7B": ("Qwen--Qwen3-1.7B", None, 1.7, "model card: 1.7B parameters"),
    "Qwen/Qwen3-8B": ("Qwen--Qwen3-8B", None, 8.2, "model card: 8.2B parameters"),
    "Qwen/Qwen3-32B": ("Qwen--Qwen3-32B", None, 32.8, "model card: 32.8B parameters"),
    "Qwen/Qwen3-32B-FP8": ("Qwen--Qwen3-32B-FP8", None, 32.8, "model card: FP8 of Qwen3-32B, 32.8B parameters"),
    "Qwen/Qwen3-30B-A3B": ("Qwen--Qwen3-30B-A3B", None, 30.5, "model card: 30.5B total, 3.3B activated"),
    "Qwen/Qwen3-30B-A3B-FP8": ("Qwen--Qwen3-30B-A3B-FP8", None, 30.5, "model card: FP8 of Qwen3-30B-A3B"),
    "Qwen/Qwen3-235B-A22B": ("Qwen--Qwen3-235B-A22B", None, 235, "model card: 235B total, 22B activated"),
    "Qwen/Qwen3-235B-A22B-FP8": ("Qwen--Qwen3-235B-A22B-FP8", None, 235, "model card: FP8 of Qwen3-235B-A22B"),
    "nvidia/Qwen3-235B-A22B-NVFP4": (
        "nvidia--Qwen3-235B-A22B-NVFP4",
        "nvidia--Qwen3-235B-A22B-NVFP4_hf_quant",
        235,
        "model card: NVFP4 of Qwen3-235B-A22B",
    ),
    "Qwen/Qwen3-Coder-480B-A35B-Instruct": (
        "Qwen--Qwen3-Coder-480B-A35B-Instruct",
        None,
        480,
        "model card: 480B total, 35B activated",
    ),
    "meta-llama/Llama-3.1-8B": ("meta-llama--Meta-Llama-3.1-8B", None, 8.0, "model card: 8B"),
    "meta-llama/Llama-3.1-8B-Instruct": ("meta-llama--Meta-Llama-3.1-8B", None, 8.0, "model card: 8B"),
    "meta-llama/Meta-Llama-3.1-8B-Instruct": ("meta-llama--Meta-Llama-3.1-8B", None, 8.0, "model card: 8B"),
    "meta-llama/Llama-3.1-70B": ("meta-llama--Meta-Llama-3.1-70B", None, 70.6, "model card: 70B (70.6B on the hub)"),
    "meta-llama/Llama-3.1-70B-Instruct": ("meta-llama--Meta-Llama-3.1-70B", None, 70.6, "model card: 70B"),
    "meta-llama/Meta-Llama-3.1-70B-Instruct": ("meta-llama--Meta-Llama-3.1-70B", None, 70.6, "model card: 70B"),
    "meta-llama/Llama-3.3-70B-Instruct": (
        "meta-llama--Meta-Llama-3.1-70B",
        None,
        70.6,
        "model card: 70B, the Llama 3.1 70B architecture",
    ),
    "nvidia/Llama-3.1-70B-Instruct-FP8": (
        "nvidia--Llama-3.1-70B-Instruct-FP8",
        "nvidia--Llama-3.1-70B-Instruct-FP8_hf_quant",
        70.6,
        "model card: FP8 of Llama 3.1 70B Instruct",
    ),
    "meta-llama/Llama-3.1-405B": ("meta-llama--Meta-Llama-3.1-405B", None, 405, "model card: 405B"),
    "meta-llama/Llama-3.1-405B-Instruct": ("meta-llama--Meta-Llama-3.1-405B", None, 405, "model card: 405B"),
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": (
        "meta-llama--Llama-4-Scout-17B-16E-Instruct",
        None,
        109,
        "model card: 17B activated, 109B total",
    ),
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": (
        "meta-llama--Llama-4-Maverick-17B-128E-Instruct",
        None,
        400,
        "model card: 17B activated, 400B total",
    ),
    "openai/gpt-oss-20b": ("openai--gpt-oss-20b", None, 21, "model card: 21B total, 3.6B active"),
    "openai/gpt-oss-120b": ("openai--gpt-oss-120b", None, 117, "model card: 117B total, 5.1B active"),
    "moonshotai/Kimi-K2-Instruct": ("moonshotai--Kimi-K2-Instruct", None, 1000, "model card: 1T total, 32B activated"),
    "moonshotai/Kimi-K2-Instruct-0905": (
        "moonshotai--Kimi-K2-Instruct",
        None,
        1000,
        "model card: 1T total, 32B activated, the Kimi K2 architecture",
    ),
    "moonshotai/Kimi-K2-Thinking": ("moonshotai--Kimi-K2-Instruct", None, 1000, "model card: the Kimi K2 architecture"),
    "zai-org/GLM-5": ("zai-org--GLM-5", None, 744, "model card: 744B total, 40B active"),
    "zai-org/GLM-5-FP8": ("zai-org--GLM-5-FP8", None, 744, "model card: FP8 of GLM-5"),
    "nvidia/GLM-5-NVFP4": ("nvidia--GLM-5-NVFP4", "nvidia--GLM-5-NVFP4_hf_quant", 744, "model card: NVFP4 of GLM-5"),
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8": (
        "nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-FP8",
        "nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-FP8_hf_quant",
        120,
        "model card: 120B total, 12B active",
    ),
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-NVFP4": (
        "nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-NVFP4",
        "nvidia--NVIDIA-Nemotron-3-Super-120B-A12B-NVFP4_hf_quant",
        120,
        "model card: 120B total, 12B active",
    ),
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16": (
        "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
        None,
        31.6,
        "model card: 31.6B total, about 3.6B active",
    ),
    "mistralai/Mixtral-8x7B-v0.1": ("mistralai--Mixtral-8x7B-v0.1", None, 46.7, "model card: 46.7B total"),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ("mistralai--Mixtral-8x7B-v0.1", None, 46.7, "model card: 46.7B total"),
    "mistralai/Mixtral-8x22B-v0.1": ("mistralai--Mixtral-8x22B-v0.1", None, 141, "model card: 141B total"),
}


def main(argv: list[str]) -> int:
    source_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_DIR
    if source_dir is None or not source_dir.is_dir():
        print("no model_configs directory: install AIConfigurator (scripts/setup.sh) or pass one", file=sys.stderr)
        return 2
    models = {}
    for hub_id, (stem, quant_stem, published, card) in sorted(MODELS.items(), key=lambda kv: kv[0].lower()):
        config = json.loads((source_dir / f"{stem}_config.json").read_text())
        quant = json.loads((source_dir / f"{quant_stem}_config.json").read_text()) if quant_stem else None
        arch = arch_from_config(config, quant)
        config_of = stem.replace("--", "/")
        models[hub_id] = {
            "arch": arch.to_json(),
            "published_params_b": published,
            "source": f"config.json of {HUB}{config_of} (the copy AIConfigurator 0.12.0 ships)"
            + (
                f", hf_quant_config.json of {HUB}{quant_stem.removesuffix('_hf_quant').replace('--', '/')}"
                if quant_stem
                else ""
            )
            + f"; parameters: {HUB}{hub_id} {card}",
        }
    out = ROOT / "dyncc" / "facts" / "models.json"
    about = (
        "Architecture of well-known checkpoints, read from their Hugging Face config.json by dyncc.facts.arch "
        "(scripts/gen_model_facts.py); each entry names its source. model.facts in a spec overrides any value."
    )
    out.write_text(json.dumps({"_about": about, "models": models}, indent=1, sort_keys=False) + "\n")
    print(f"wrote {out} ({len(models)} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
