"""Everything TensorRT-LLM-specific: the engine config a pool resolves to (keys, enum spellings,
speculative forms, where each value came from), the key sets each TRT-LLM version accepts
(``data/trtllm_<version>_keys.json``, one file per version), and the engine YAML workers read.
The rest of dyncc speaks of the plan.
"""
