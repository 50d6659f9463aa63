"""The capability matrix, enforced: every spec feature is realized by a target or refused there with a code
naming the target and the targets that can; docs/capabilities.md is generated from the same declarations."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import ROOT, cli

from dyncc.targets import targets
from dyncc.targets.base import FEATURES, capability_matrix

BASE = {
    "apiVersion": "dyncc/v1",
    "name": "capabilities",
    "model": {"path": "Qwen/Qwen3-0.6B", "moe": False},
    "pools": {"prefill": {}, "decode": {}},
}
# A spec using each feature (by its spec path), valid on the targets that realize it.
USES = {
    ("cluster", "nodes"): {"cluster": {"nodes": 2, "gpus_per_node": 1}},
    ("cluster", "node_groups"): {
        "cluster": {
            "node_groups": {
                "a": {"gpu_type": "H100", "gpus_per_node": 1},
                "b": {"gpu_type": "H200", "gpus_per_node": 1},
            }
        },
        "pools": {"prefill": {"node_group": "a"}, "decode": {"node_group": "b"}},
    },
    ("worker_runtime",): {"worker_runtime": "mocker"},
    ("planner", "enabled"): {"planner": {"enabled": True, "ttft_ms": 200, "itl_ms": 20}},
    ("benchmark",): {"benchmark": {"concurrency": [1]}},
    ("router", "replica_sync"): {"router": {"mode": "kv", "replica_sync": True}},
    ("request_plane",): {"request_plane": "nats"},
    ("infrastructure", "node"): {
        "infrastructure": {"node": "dedicated"},
        "request_plane": "nats",
        "cluster": {"nodes": 2},
    },
    ("pools", "<role>", "launch_prefix"): {
        "pools": {"prefill": {"launch_prefix": ["numactl", "-m", "0,1"]}, "decode": {}}
    },
    ("pools", "<role>", "env"): {
        "pools": {"prefill": {"env": {"TRTLLM_EPLB_SHM_NAME": "moe_{worker_index}"}}, "decode": {}}
    },
}


def write(tmp_path: Path, **top: object) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top}, sort_keys=False))
    return path


def test_docs_capabilities_md_is_generated_from_the_declarations():
    doc = (ROOT / "docs" / "capabilities.md").read_text()
    assert doc == capability_matrix(targets()), "docs/capabilities.md is stale: python3 scripts/gen_docs.py"


def test_every_feature_has_a_spec_that_uses_it():
    assert {f.spec_path for f in FEATURES} == set(USES)


@pytest.mark.parametrize(
    ("feature", "target"),
    [(f, t) for f in FEATURES for t in targets() if not t.can(f.capability)],
    ids=lambda x: getattr(x, "code", None) or getattr(x, "name", ""),
)
def test_a_target_lacking_a_capability_refuses_the_feature_naming_who_can(tmp_path, feature, target):
    spec = write(tmp_path, **USES[feature.spec_path])
    result = cli("validate", "-t", target.name, spec)
    output = result.stdout + result.stderr
    severity = "error" if feature.blocking else "warning"
    assert f"{severity} {feature.code}" in output, output
    assert f"the {target.name} target" in output
    capable = [t.name for t in targets() if t.can(feature.capability)]
    assert capable and all(name in output for name in capable), output
    assert result.returncode == (1 if feature.blocking else 0), output


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.code)
def test_a_target_with_the_capability_builds_the_feature(tmp_path, feature):
    spec = write(tmp_path, **USES[feature.spec_path])
    for target in targets():
        if target.can(feature.capability) and not (feature.code == "DYN530" and target.name == "k8s"):
            result = cli("build", "-t", target.name, spec, "-o", tmp_path / "out")
            refusals = [c for c in ("DYN501", "DYN530", "DYN580") if f"error {c}" in result.stderr]
            assert feature.code not in refusals, (target.name, result.stderr)


def test_build_all_with_the_planner_builds_k8s_and_skips_the_others_with_the_code(tmp_path):
    spec = write(tmp_path, **USES[("planner", "enabled")])
    result = cli("build", spec, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "k8s").is_dir()
    for name in ("local", "slurm", "compose"):
        assert not (tmp_path / "out" / name).exists()
        assert f"{name} skipped: the {name} target cannot run Dynamo's planner" in result.stdout + result.stderr


@pytest.mark.parametrize("target", ["local", "slurm"])
def test_kvbm_under_the_mock_engine_is_refused(tmp_path, target):
    spec = write(tmp_path, worker_runtime="mocker", kvbm={"enabled": True})
    result = cli("validate", "-t", target, spec)
    assert result.returncode == 1 and "error DYN582" in result.stdout + result.stderr
    assert "kvbm.enabled" in result.stdout + result.stderr


def test_epd_under_the_mock_engine_is_refused_and_wired_under_trtllm(tmp_path):
    pools = {"encode": {}, "prefill": {}, "decode": {}}
    mock = cli("validate", "-t", "local", write(tmp_path, pools=pools, worker_runtime="mocker"))
    assert mock.returncode == 1 and "error DYN503" in mock.stdout + mock.stderr
    assert "encode" in mock.stdout + mock.stderr
    assert cli("build", "-t", "local", write(tmp_path, pools=pools), "-o", tmp_path / "out").returncode == 0
    launch = (tmp_path / "out" / "local" / "launch.sh").read_text()
    prefill = next(line for line in launch.splitlines() if "--disaggregation-mode prefill" in line)
    assert "--encode-endpoint dyn://dynamo.encode.generate" in prefill and "--modality multimodal" in prefill
    assert sum("--modality multimodal" in line for line in launch.splitlines()) == 3


def test_replica_sync_warns_where_one_frontend_runs_and_not_on_k8s_with_frontend_replicas(tmp_path):
    spec = write(tmp_path, router={"mode": "kv", "replica_sync": True}, k8s={"frontend": {"replicas": 2}})
    local = cli("validate", "-t", "local", spec)
    assert local.returncode == 0 and "warning DYN307" in local.stdout + local.stderr
    k8s = cli("validate", "-t", "k8s", spec)
    assert k8s.returncode == 0 and "DYN307" not in k8s.stdout + k8s.stderr, k8s.stdout + k8s.stderr


def test_a_feature_left_out_is_a_warning_for_a_target_asked_for_and_a_note_under_all(tmp_path):
    """`-t compose` and a `benchmark:` compose does not write: a warning; the default `-t all`, where compose was
    not asked for by name: a note, as a target that cannot run the spec at all is skipped with a note."""
    spec = write(tmp_path, benchmark={"isl": 128, "osl": 16})
    named = cli("validate", "-t", "compose", spec)
    assert named.returncode == 0 and "warning DYN581" in named.stdout + named.stderr
    every = cli("validate", spec)
    assert every.returncode == 0 and "info DYN581" in every.stdout + every.stderr
    assert "warning DYN581" not in every.stdout + every.stderr


@pytest.mark.parametrize("option", ["temperature", "overlap_score_credit"])
def test_router_weights_validate_without_a_deprecation_warning(tmp_path, option):
    # Dynamo 1.6 deprecates their flags; dyncc writes them into --router-policy-config (tests/test_router_policy.py).
    result = cli("validate", write(tmp_path, router={"mode": "kv", option: 0.5}))
    assert result.returncode == 0 and "DYN306" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_conditional_disagg_turns_on_decode_kv_events(tmp_path):
    spec = write(tmp_path, router={"mode": "kv", "conditional_disagg": True})
    assert cli("build", "-t", "local", spec, "-o", tmp_path / "out").returncode == 0
    launch = (tmp_path / "out" / "local" / "launch.sh").read_text()
    decode = next(line for line in launch.splitlines() if "--disaggregation-mode decode" in line)
    assert "--publish-kv-events" in decode
