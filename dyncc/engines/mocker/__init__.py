"""Dynamo's mock engine (``dynamo.mocker``): a worker that serves the same topology with no GPUs.

It stands in for the engine that reads the spec's engine section: same served name, block size,
disaggregation mode, batch limits and attention-DP size, taken from that engine's resolved config; only the
process differs. It runs on the host (no container), one process per worker, serving a local model directory
offline: the spec's checkpoint when it is one here, else the tiny model shipped in ``tiny_model/``.
"""

from dyncc.engines.base import Engine

ENGINE = Engine(
    name="mocker",
    label="Dynamo's mock engine",
    worker_label="mock-engine",
    module="dynamo.mocker",
    component="mocker",
    implementation="dyncc.engines.mocker.impl",
    mock=True,
    image=None,
    rank_per_gpu=False,
    offline=True,
    offline_files=("dyncc.engines.mocker", "tiny_model"),
    env=(("HF_HUB_OFFLINE", "1", "the mock engine's offline tokenizer"),),
)
