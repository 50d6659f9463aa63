"""A per-run Hugging Face cache entry for a model directory served under another name.

Where a worker given a local model directory records its files as ``hf://<served name>/...`` (Dynamo 1.1-1.3,
``Profile.local_model_from_hub_cache``), the frontend reads them from the Hugging Face cache by the served name,
offline, and never lists a model that is not there. The launch script therefore enters the directory in a
cache of its own run directory (HF_HUB_CACHE, which the frontend's hub client reads) as the served name's only
snapshot: links to the directory's entries, so nothing is copied and the user's own cache is not touched.
"""

from __future__ import annotations

from dyncc.compiler.plan import DeploymentPlan, Slot
from dyncc.targets.shell import quote

# The snapshot's name: a cache entry needs a 40-hex commit, and the directory has none.
SNAPSHOT = "0" * 40
LOCAL_MODEL = Slot("local_model")  # the slot whose directory is entered


def needed(plan: DeploymentPlan) -> bool:
    """Whether the release's frontend reads a worker's local model directory from the hub cache."""
    return plan.profile.local_model_from_hub_cache and any(
        slot.kind == "local_model" for pool in plan.pools for slot in pool.command.slots()
    )


def entry_name(served_name: str) -> str:
    """The cache's directory for a model id, as the hub spells it (``org/name`` -> ``models--org--name``)."""
    return "models--" + served_name.replace("/", "--")


def hub_cache_lines(plan: DeploymentPlan, model_dir: object, run_dir: str) -> list[str]:
    """Shell lines that enter ``model_dir`` (a shell word: a path, or Raw for a variable) in ``run_dir``/hf-cache
    as the served name's snapshot and point HF_HUB_CACHE there; none where the release does not need it."""
    if not needed(plan):
        return []
    entry = f'"$HF_HUB_CACHE"/{quote(entry_name(plan.served_name))}'
    return [
        f"# Dynamo {plan.dynamo_version}'s frontend reads the workers' model files from the Hugging Face cache by the",
        "# served name: the model directory is entered in this run's own cache as that name's snapshot.",
        f'export HF_HUB_CACHE="{run_dir}/hf-cache"',
        f"rm -rf {entry}",
        f"mkdir -p {entry}/snapshots/{SNAPSHOT} {entry}/refs",
        f'for f in {quote(model_dir)}/*; do ln -s "$f" {entry}/snapshots/{SNAPSHOT}/; done',
        f"echo {SNAPSHOT} >{entry}/refs/main",
    ]
