"""TensorRT-LLM, the engine Dynamo's ``dynamo.trtllm`` workers run: everything dyncc knows of it.

The engine config a pool resolves to (keys, enum spellings, speculative forms, where each value came from:
:mod:`.engine_config`), the key sets each TRT-LLM version accepts (``data/trtllm_<version>_keys.json``, one
file per version: :mod:`.keys`, :mod:`.types`, :mod:`.overrides`), what a Dynamo release means for its
workers (:mod:`.release`), their command line (:mod:`.impl`) and the rules over engine configs
(:mod:`.rules`). The rest of dyncc speaks of the plan.
"""

from dyncc.engines.base import Engine

ENGINE = Engine(
    name="trtllm",
    label="TensorRT-LLM",
    worker_label="TensorRT-LLM",
    module="dynamo.trtllm",
    component="worker",
    implementation="dyncc.engines.trtllm.impl",
    configures=True,
    image="tensorrtllm-runtime",
    rank_per_gpu=True,
    # Several ranks on Slurm: each runs under trtllm-llmapi-launch, which makes rank 0 the Dynamo worker.
    rank_launcher=("trtllm-llmapi-launch",),
    # Multi-node TRT-LLM runs under mpirun as root in Dynamo's images.
    multinode_env=(("OMPI_ALLOW_RUN_AS_ROOT", "1"), ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")),
    dgd_backend="trtllm",
    dgd_service_prefix="TRTLLM",
    # Its import alone takes seconds and needs CUDA: `dyncc up` looks for it without importing it.
    python_package=("tensorrt_llm", "TensorRT-LLM"),
    aic_backend="trtllm",
    # AIConfigurator 0.12.0's data for it is from 1.3.0rc20 (its "current" slot); Dynamo 1.6.1 pins 1.3.0rc29,
    # for which it has none: predictions say which version they were measured on.
    aic_data_version="1.3.0rc20",
)
