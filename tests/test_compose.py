"""The compose target: files docker-compose itself accepts, GPUs from the placement, the plan's worker
commands, and coded refusals for what one server with Docker cannot run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from command_lines import plan_worker_args
from conftest import EXAMPLES, SINGLE_NODE_EXAMPLES, assert_no_traceback, cli

from dyncc.api import render_targets, with_dynamo_version
from dyncc.compiler import compile_spec
from dyncc.deployment import load_spec, load_spec_text
from dyncc.diagnostics import DiagnosticError
from dyncc.targets.compose.impl import worker_command

DOCKER_COMPOSE = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose is installed by scripts/setup.sh")


def _compose_config(directory: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config`: parses and validates the file offline (unknown keys and bad values fail)."""
    assert DOCKER_COMPOSE is not None
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(directory / "docker-compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=directory,
        env={"PATH": "/usr/bin:/bin", "HF_TOKEN": ""},
    )


def _build(spec: Path, out: Path, *extra: object) -> Path:
    proc = cli("build", spec, "-t", "compose", "-o", out, *extra)
    assert proc.returncode == 0, proc.stderr
    return out / "compose"


@needs_compose
def _fast_lane_sample(example: Path) -> list:
    # One docker-compose run costs ~0.7 s: the fast lane checks agg and disagg_router, the full suite all.
    return [] if example.stem in ("agg", "disagg_router") else [pytest.mark.slow]


@pytest.mark.parametrize("version", [None, "0.5.1"], ids=["dynamo-1.x", "dynamo-0.x"])
@pytest.mark.parametrize(
    "example", [pytest.param(e, id=e.stem, marks=_fast_lane_sample(e)) for e in SINGLE_NODE_EXAMPLES]
)
def test_docker_compose_accepts_every_single_node_example(example, version, tmp_out):
    directory = _build(example, tmp_out, *(["--dynamo-version", version] if version else []))
    proc = _compose_config(directory)
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    plan = compile_spec(with_dynamo_version(load_spec(example), version)).plan
    workers = [w.name for _, w in plan.workers]
    assert set(resolved["services"]) >= {"etcd", "frontend", *workers}
    # Dynamo 0.x's frontend can miss workers registering while it starts watching etcd: it starts once
    # every worker is healthy. 1.x's starts with them.
    frontend_needs = resolved["services"]["frontend"]["depends_on"]
    waits_for = {name for name in workers if frontend_needs.get(name, {}).get("condition") == "service_healthy"}
    assert waits_for == (set(workers) if version == "0.5.1" else set())


@needs_compose
def test_docker_compose_rejects_a_broken_file(tmp_path):
    # The check can fail: a key compose does not know is refused.
    (tmp_path / "docker-compose.yaml").write_text("services:\n  a:\n    image: x\n    gpus_please: 1\n")
    assert _compose_config(tmp_path).returncode != 0


def test_workers_get_the_placement_gpus_and_the_plan_command(tmp_out):
    example = EXAMPLES / "disagg_router.yaml"
    compose = yaml.safe_load((_build(example, tmp_out) / "docker-compose.yaml").read_text())
    plan = compile_spec(load_spec(example)).plan
    seen: list[str] = []
    for pool, worker in plan.workers:
        service = compose["services"][worker.name]
        (devices,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices["device_ids"] == [str(g) for g in worker.placement.gpus_on(0)]
        seen += devices["device_ids"]
        # The same worker arguments as every other target, engine YAML at its read-only mount.
        assert service["command"] == worker_command(plan, pool)
        assert service["command"][3:] == plan_worker_args(plan, pool, plan.model_path, "/etc/dyncc/engine")
        assert "./engine:/etc/dyncc/engine:ro" in service["volumes"]
        assert service["depends_on"]["etcd"] == {"condition": "service_healthy"}
        assert "8081/health" in service["healthcheck"]["test"][-1]
        assert service["restart"] == "on-failure"
    assert len(seen) == len(set(seen)) == plan.total_gpus  # no GPU given twice
    assert (tmp_out / "compose" / "engine" / "prefill.yaml").read_text() == plan.pools[0].engine_yaml


def test_dollar_in_spec_values_reaches_the_process_as_written(tmp_path):
    text = (
        (EXAMPLES / "agg.yaml").read_text().replace("  agg:\n", "  agg:\n    env: {GREETING: 'costs $5 ${HOME}'}\n", 1)
    )
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    directory = _build(spec, tmp_path / "out")
    if DOCKER_COMPOSE is not None:
        # `config` prints the file after interpolation, writing literal dollars escaped again: an
        # interpolated ${HOME} would show as its value (or as empty), not as $${HOME}.
        resolved = yaml.safe_load(_compose_config(directory).stdout)
        assert resolved["services"]["agg-0"]["environment"]["GREETING"] == "costs $$5 $${HOME}"
    assert "costs $$5 $${HOME}" in (directory / "docker-compose.yaml").read_text()


def test_multi_node_spec_is_refused_naming_the_targets_that_can_run_it(tmp_out):
    proc = cli("build", EXAMPLES / "wide_ep.yaml", "-t", "compose", "-o", tmp_out)
    assert proc.returncode == 1
    assert_no_traceback(proc)
    assert "error DYN501" in proc.stderr and "compose target runs one node" in proc.stderr
    assert "-t k8s or -t slurm" in proc.stderr
    assert not tmp_out.exists()


def test_all_skips_compose_for_a_multi_node_spec_with_its_code():
    compilation = compile_spec(load_spec(EXAMPLES / "wide_ep.yaml"))
    rendered, skipped = render_targets(compilation, ["all"])
    assert set(rendered) == {"k8s", "slurm"}
    assert {(d.code, d.severity) for d in skipped} == {("DYN501", "info")}
    assert any("compose skipped" in d.message for d in skipped)


def test_mock_engine_is_refused_with_a_code(tmp_out):
    proc = cli("build", EXAMPLES / "agg.yaml", "-t", "compose", "--engine", "mocker", "-o", tmp_out)
    assert proc.returncode == 1
    assert "error DYN530" in proc.stderr and "-t local or -t slurm" in proc.stderr


def test_missing_image_is_the_versions_ngc_runtime():
    loaded = load_spec_text((EXAMPLES / "agg.yaml").read_text(), "a.yaml")
    rendered, _ = render_targets(compile_spec(loaded), ["compose"])
    compose = yaml.safe_load(rendered["compose"]["docker-compose.yaml"])
    assert compose["services"]["frontend"]["image"] == "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1"


def test_compose_settings_are_checked_like_the_rest_of_the_spec():
    text = (EXAMPLES / "agg.yaml").read_text() + "compose: {restart: sometimes}\n"
    with pytest.raises(DiagnosticError) as exc:
        load_spec_text(text, "c.yaml")
    assert [d.code for d in exc.value.diagnostics] == ["DYN014"]
