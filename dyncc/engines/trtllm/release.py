"""What a Dynamo release means for its TensorRT-LLM workers, read from the release file alone.

The release file names the TensorRT-LLM its wheel pins and every flag its worker's parser declares
(component ``worker``); each fact here is read from those, so a new release is a new data file. The key set
that checks engine configs is the pin's own where dyncc carries it (``data/trtllm_<version>_keys.json``),
else the nearest one (``keyset``; DYN707 warns).
"""

from __future__ import annotations

import msgspec

from dyncc.engines.trtllm.keys import accepted_keys, enum_values, keys_versions, nearest_version
from dyncc.releases import Release

# The key in a release file that names the TensorRT-LLM its wheel pins (`Requires-Dist: tensorrt-llm==X`).
PIN = "trtllm"


class TrtllmRelease(msgspec.Struct, frozen=True):
    dynamo_version: str
    version: str  # the TensorRT-LLM the release pins
    keyset: str  # the key set that checks engine configs (the pin's, or the nearest: DYN707)
    transfer_default: str  # the KV transfer backend the release's workers use unless told
    agg_mode: str  # what `--disaggregation-mode` says for aggregated workers
    kv_event_flags: tuple[str, ...]
    namespace_flag: bool  # the worker takes `--namespace` (0.5's takes `--endpoint dyn://ns.comp.ep` instead)
    # Dynamo 0.5.1's worker builds a BuildConfig from its --max-batch-size/--max-num-tokens/--max-seq-len
    # flags (defaults when absent), and TRT-LLM 1.1.0rc5 copies build_config's values over the engine
    # YAML's top-level ones: the engine limits must be flags too, or the YAML's are silently replaced.
    limits_as_flags: bool
    model_flag: str  # the worker's model flag (1.0 renamed --model-path to --model; the old name deprecated)
    encode_endpoint: str | None  # the encode worker's default endpoint; `{namespace}` filled in
    revision_flag: bool  # `--revision`: the worker downloads a hub model at a revision (1.0.0+)
    # The release data every fact above was read from (a Release compares by its version).
    release: Release | None = None

    @property
    def keyset_exact(self) -> bool:
        return self.keyset == self.version

    @property
    def label(self) -> str:
        return f"Dynamo {self.dynamo_version} (TensorRT-LLM {self.version})"

    def transceiver_backend(self, backend: str) -> str:
        """The spelling this version's TRT-LLM accepts; an unknown backend is kept for DYN108 to report."""
        accepted = enum_values(self.keyset, "cache_transceiver_config.backend")
        return next((b for b in accepted if b.upper() == backend.upper()), backend)


def pin(rel: Release) -> str:
    return rel.pins[PIN]


def keyset_for(trtllm: str) -> str:
    """The key set that checks engine configs for a TensorRT-LLM pin: the pin's own where dyncc carries it,
    else the nearest (:func:`~dyncc.engines.trtllm.keys.nearest_version`). DYN707 warns whenever the set is
    not the pin's own."""
    return nearest_version(trtllm, keys_versions())


def _encode_endpoint(rel: Release) -> str | None:
    """The endpoint the encode worker serves unless told otherwise, from the release's parser constants."""
    constants = rel.constants
    for name, value in constants.items():
        if name.endswith(".DEFAULT_ENCODE_ENDPOINT"):
            return str(value)  # 0.x: a fixed endpoint (its workers take no namespace flag)
    for name, value in constants.items():
        if name.endswith(".DEFAULT_ENCODE_COMPONENT"):
            return f"dyn://{{namespace}}.{value}.generate"
    return None


def release_view(rel: Release) -> TrtllmRelease:
    """What ``rel`` deploys on its TensorRT-LLM workers, each fact read from its worker parser's flags."""
    worker = rel.flags["worker"]
    version = pin(rel)
    keyset = keyset_for(version)
    return TrtllmRelease(
        dynamo_version=rel.dynamo,
        version=version,
        keyset=keyset,
        transfer_default=rel.documented["transfer_default"],
        agg_mode="agg" if "agg" in rel.choices("worker", "--disaggregation-mode") else "prefill_and_decode",
        kv_event_flags=("--publish-kv-events",)
        if "--publish-kv-events" in worker
        else ("--publish-events-and-metrics",),
        namespace_flag="--namespace" in worker,
        # A worker that builds a BuildConfig from its limit flags, on a TensorRT-LLM whose llm_args still has
        # build_config (copied over the YAML's top-level limits): the limits must be flags too.
        limits_as_flags="--max-batch-size" in worker and "build_config" in accepted_keys(keyset)["top"],
        model_flag="--model" if "--model" in worker else "--model-path",
        encode_endpoint=_encode_endpoint(rel),
        revision_flag="--revision" in worker,
        release=rel,
    )
