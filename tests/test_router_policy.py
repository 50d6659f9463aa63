"""The KV router's weights reach Dynamo 1.6.1 through a generated --router-policy-config file, never through
the flags it deprecates; 1.6.1 output holds no flag its own parsers mark deprecated (issue 31).

The deprecation marks come from ../shared/reference/dynamo-releases.json (each release's parsers, imported
from its wheel); the policy file is checked by the installed Dynamo 1.6.1: its frontend parser, its Rust
policy loader in process, and a real frontend process on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REFERENCE, VALID_EXAMPLES, free_port_block
from dynamo_parsers import DYNAMO_AVAILABLE, parse_frontend

from dyncc.api import with_engine
from dyncc.compiler import compile_spec
from dyncc.compiler.plan import DEFAULT_POLICY_TYPE, ROUTER_POLICY_FILE, DeploymentPlan
from dyncc.deployment import load_spec, load_spec_text
from dyncc.targets.compose.impl import compose_file
from dyncc.targets.k8s.objects import frontend_args as k8s_frontend_args
from dyncc.targets.k8s.objects import worker_args as k8s_worker_args
from dyncc.targets.local import frontend_command as local_frontend
from dyncc.targets.local import worker_command as local_worker
from dyncc.targets.slurm.impl import frontend_command as slurm_frontend
from dyncc.targets.slurm.impl import worker_command as slurm_worker

RELEASES = "dynamo-releases.json"
COMPONENT_FLAGS = {
    "dynamo.frontend": "frontend_flags",
    "dynamo.trtllm": "worker_flags",
    "dynamo.mocker": "mocker_flags",
}


def _weights_spec(topology: str, version: str = "1.6.1", **router: Any) -> str:
    pools = {"agg": {}} if topology == "agg" else {"prefill": {}, "decode": {}}
    return yaml.safe_dump(
        {
            "apiVersion": "dyncc/v1",
            "name": f"weights-{topology}",
            "dynamo": {"version": version},
            "model": {"path": "Qwen/Qwen3-0.6B", "moe": False},
            "router": {"mode": "kv", **router},
            "pools": pools,
        }
    )


WEIGHTS = {"temperature": 0.7, "overlap_score_credit": 0.25}
# Every example, and specs that set the router's weights (no example does).
SPECS = [(p.name, lambda p=p: load_spec(p)) for p in VALID_EXAMPLES] + [
    (f"weights-{t}", lambda t=t: load_spec_text(_weights_spec(t, **WEIGHTS))) for t in ("agg", "disagg")
]


def _module_words(command: list[Any]) -> tuple[str, list[str]]:
    words = [str(w) for w in command]
    at = words.index("-m")
    return words[at + 1], words[at + 2 :]


def _command_lines(plan: DeploymentPlan, spec: Any) -> list[tuple[str, str, list[str]]]:
    """(target, module, argv) of every Dynamo process the four targets start."""
    lines: list[tuple[str, str, list[str]]] = []
    for target, front, worker, settings in (
        ("local", local_frontend, local_worker, spec.local),
        ("slurm", slurm_frontend, slurm_worker, spec.slurm),
    ):
        lines.append((target, *_module_words(front(plan, settings))))
        lines += [(target, *_module_words(worker(plan, settings, p, w))) for p, w in plan.workers]
    if plan.worker_runtime == "trtllm":  # compose and k8s run TensorRT-LLM workers only
        for service in compose_file(plan, spec.compose)["services"].values():
            command = [str(w) for w in service.get("command", [])]
            if "-m" in command:
                lines.append(("compose", *_module_words(command)))
        lines.append(("k8s", "dynamo.frontend", k8s_frontend_args(plan)))
        lines += [("k8s", "dynamo.trtllm", k8s_worker_args(plan, p)) for p in plan.pools]
    return lines


def _deprecated(release: dict[str, Any], module: str, word: str) -> str | None:
    flag = word.split("=", 1)[0]
    flags = release[COMPONENT_FLAGS[module]]
    entry = flags.get(flag) or next((v for v in flags.values() if flag in (v.get("aliases") or ())), None)
    return entry.get("deprecated") if entry else None


@pytest.mark.reference(RELEASES)
@pytest.mark.parametrize("runtime", ["trtllm", "mocker"])
@pytest.mark.parametrize("name, load", SPECS, ids=[n for n, _ in SPECS])
def test_dynamo_1_6_1_output_holds_no_flag_its_parsers_mark_deprecated(name, load, runtime):
    release = json.loads((REFERENCE / RELEASES).read_text())["1.6.1"]
    # The check can fail: the data marks the flags dyncc used to write.
    assert "--router-policy-config" in _deprecated(release, "dynamo.frontend", "--router-temperature")
    compilation = compile_spec(load())
    if compilation.plan is None:
        pytest.skip(f"{name} does not build for Dynamo 1.6.1 as written")
    assert compilation.plan.dynamo_version == "1.6.1"
    plan = compilation.plan if runtime == "trtllm" else with_engine(compilation, "mocker").plan
    lines = _command_lines(plan, compilation.loaded.spec)
    flags = [(t, m, w) for t, m, argv in lines for w in argv if w.startswith("--")]
    assert {m for _, m, _ in lines} >= {"dynamo.frontend"} and flags
    found = [(t, m, w, why) for t, m, w in flags if (why := _deprecated(release, m, w))]
    assert not found, found


@pytest.mark.parametrize("topology, stages", [("agg", {"aggregated"}), ("disagg", {"prefill", "decode"})])
def test_weights_go_to_the_policy_file_on_1_6_1_and_stay_flags_on_0_5_1(topology, stages):
    plan = compile_spec(load_spec_text(_weights_spec(topology, **WEIGHTS))).plan
    assert not {"--router-temperature", "--router-kv-overlap-score-credit"} & set(plan.frontend.flags)
    policy = yaml.safe_load(plan.router_policy)["worker_selection"]
    (instance,) = policy["instances"]
    assert instance["type"] == DEFAULT_POLICY_TYPE
    assert instance["parameters"] == {"router_temperature": 0.7, "overlap_score_credit": 0.25}
    assert {k for k in policy if k != "instances"} == stages and {policy[s] for s in stages} == {instance["name"]}
    assert ROUTER_POLICY_FILE in plan.engine_files()
    # Dynamo 0.5.1 has --router-temperature (not deprecated there) and no policy file.
    old = compile_spec(load_spec_text(_weights_spec(topology, "0.5.1", temperature=0.7))).plan
    assert (
        old.router_policy is None and old.frontend.flags[old.frontend.flags.index("--router-temperature") + 1] == "0.7"
    )
    # No weights, no file: the examples' output is unchanged.
    assert compile_spec(load_spec_text(_weights_spec(topology))).plan.router_policy is None


def test_every_target_ships_the_file_where_its_frontend_reads_it(tmp_path):
    from conftest import cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(_weights_spec("disagg", **WEIGHTS))
    out = tmp_path / "out"
    assert cli("build", spec, "-o", out).returncode == 0
    text = (out / "local" / "engine" / ROUTER_POLICY_FILE).read_text()
    for target in ("local", "slurm", "compose"):
        assert (out / target / "engine" / ROUTER_POLICY_FILE).read_text() == text
    assert f'--router-policy-config "$HERE/engine/{ROUTER_POLICY_FILE}"' in (out / "local" / "launch.sh").read_text()
    assert (
        f'--router-policy-config "$DYNCC_DIR/engine/{ROUTER_POLICY_FILE}"' in (out / "slurm" / "job.sbatch").read_text()
    )
    frontend = yaml.safe_load((out / "compose" / "docker-compose.yaml").read_text())["services"]["frontend"]
    assert frontend["command"][-2:] == ["--router-policy-config", f"/etc/dyncc/engine/{ROUTER_POLICY_FILE}"]
    assert "./engine:/etc/dyncc/engine:ro" in frontend["volumes"]
    configmap = yaml.safe_load((out / "k8s" / "configmap.yaml").read_text())
    assert configmap["data"][ROUTER_POLICY_FILE] == text
    dgd = yaml.safe_load((out / "k8s" / "dynamographdeployment.yaml").read_text())
    (front,) = [c for c in dgd["spec"]["components"] if c["type"] == "frontend"]
    pod = front["podTemplate"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][-2:] == ["--router-policy-config", f"/etc/dyncc/engine/{ROUTER_POLICY_FILE}"]
    assert {"name": "engine-config", "mountPath": "/etc/dyncc/engine", "readOnly": True} in container["volumeMounts"]
    assert {"name": "engine-config", "configMap": {"name": configmap["metadata"]["name"]}} in pod["volumes"]


# --- the real Dynamo 1.6.1 ------------------------------------------------------------------------------

needs_dynamo = pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")


def _policy_file(tmp_path: Path, topology: str) -> tuple[DeploymentPlan, Path]:
    plan = compile_spec(load_spec_text(_weights_spec(topology, **WEIGHTS))).plan
    path = tmp_path / ROUTER_POLICY_FILE
    path.write_text(plan.router_policy)
    return plan, path


@needs_dynamo
@pytest.mark.parametrize("topology", ["agg", "disagg"])
def test_dynamo_1_6_1_parsers_take_the_file_without_a_deprecation_warning(tmp_path, topology):
    from dynamo._core import KvRouterConfig

    plan, path = _policy_file(tmp_path, topology)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # how Dynamo 1.6.1 announces a deprecated flag
        config = parse_frontend([*plan.frontend.flags, *plan.router_policy_args(str(path))])
    assert config.router_policy_config == str(path)
    KvRouterConfig(**config.kv_router_kwargs())  # the Rust loader parses the policy file here
    # The same loader refuses a policy document of another shape (the check can fail).
    path.write_text(plan.router_policy.replace("worker_selection:", "worker_selections:"))
    with pytest.raises(ValueError, match="unknown field `worker_selections`"):
        KvRouterConfig(router_policy_config=str(path))


def _frontend(tmp_path: Path, plan: DeploymentPlan, policy: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port_block(1)
    (tmp_path / "discovery").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DYN_DISCOVERY_BACKEND": "file",
        "DYN_FILE_KV": str(tmp_path / "discovery"),
        "DYN_TCP_RPC_HOST": "127.0.0.1",
        "DYN_TCP_RESPONSE_STREAM_HOST": "127.0.0.1",
        "DYN_SYSTEM_HOST": "127.0.0.1",
        "DYN_EVENT_PLANE_HOST": "127.0.0.1",
        "DYN_HTTP_RPC_HOST": "127.0.0.1",
    }
    log = tmp_path / f"frontend-{policy.stem}.log"
    argv = ["--http-host", "127.0.0.1", "--http-port", str(port), *plan.frontend.flags]
    argv += plan.router_policy_args(str(policy))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dynamo.frontend", *argv], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return proc, port, log


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@needs_dynamo
def test_a_real_dynamo_1_6_1_frontend_serves_with_the_file_and_refuses_a_bad_value(tmp_path):
    plan, policy = _policy_file(tmp_path, "disagg")
    proc, port, log = _frontend(tmp_path, plan, policy)
    try:
        deadline = time.monotonic() + 90
        while not _serving(port) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _serving(port), log.read_text()[-3000:]
    finally:
        _stop(proc)
    text = log.read_text()
    assert "deprecated" not in text.lower() and "unknown worker-selection" not in text, text[-3000:]
    # The frontend reads each weight at its parameter name: a value out of range, or a name the default policy
    # does not have, stops it at start-up (so the file above was read, and its values accepted).
    for name, old, new, error in (
        ("range", "router_temperature: 0.7", "router_temperature: -1.0", "router_temperature must be finite"),
        ("name", "overlap_score_credit:", "overlap_score_credits:", "unknown field `overlap_score_credits`"),
    ):
        bad = tmp_path / f"bad-{name}.yaml"
        bad.write_text(plan.router_policy.replace(old, new))
        assert bad.read_text() != plan.router_policy
        proc, _port, log = _frontend(tmp_path, plan, bad)
        try:
            assert proc.wait(timeout=90) != 0
        finally:
            _stop(proc)
        assert error in log.read_text(), log.read_text()[-3000:]


def test_overlap_credit_on_a_release_without_it_is_refused_naming_the_first_that_has_it(tmp_path):
    import json

    from conftest import cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: x\ndynamo: {version: 0.5.1}\nmodel: {path: m, moe: false}\npools: {agg: {}}\n"
        "router: {mode: kv, overlap_score_credit: 0.5}\n"
    )
    proc = cli("validate", "--format", "json", spec)
    errors = [d for d in json.loads(proc.stdout)["files"][0]["diagnostics"] if d["severity"] == "error"]
    assert [(e["code"], e["path"]) for e in errors] == [("DYN703", "router.overlap_score_credit")]
    assert "Dynamo 1.2.0" in errors[0]["message"]


@pytest.mark.parametrize("field", ["overlap_score_credit", "temperature"])
def test_router_weights_must_be_finite(tmp_path, field):
    from conftest import cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"apiVersion: dyncc/v1\nname: x\nmodel: {{path: m, moe: false}}\npools: {{agg: {{}}}}\n"
        f"router: {{mode: kv, {field}: .inf}}\n"
    )
    proc = cli("validate", spec)
    assert proc.returncode == 1 and "DYN013" in proc.stdout + proc.stderr and "finite" in proc.stdout + proc.stderr


# --- the same file on Dynamo 1.3.1, 1.4.2 and 1.5.1 (wheels from scripts/setup.sh) ------------------------
# `--router-policy-config` exists from 1.3.0, but the document it reads changed: 1.3.x/1.4.x read only queue
# policy families (no `worker_selection` section), and 1.5.x has `worker_selection` with one linked policy
# type, dynamo-two-tier-cost-fn, whose parameters are thresholds, not the router's weights. So dyncc's file is
# for 1.6.x alone, and on 1.3-1.5 the weights stay flags (not deprecated there). Each release's own frontend,
# started from its wheels, says so.

# What each release's frontend says at start-up when given the file dyncc writes for 1.6.1.
POLICY_FILE_REFUSALS = {
    "1.3.1": "unknown field `worker_selection`, expected one of `default_policy_family`, `policy_classes`",
    "1.4.2": "unknown field `worker_selection`, expected one of `default_policy_family`, `policy_classes`",
    "1.5.1": 'unknown worker-selection policy type "dynamo-default-cost-fn"; linked policy types: '
    "dynamo-two-tier-cost-fn",
}


def _release_tree(version: str) -> Path:
    from conftest import release_wheels

    return release_wheels(version, "run the real frontend")


def _run_release_frontend(tmp_path: Path, version: str, argv: list[str], name: str) -> tuple[bool, int | None, str]:
    """(served /v1/models, exit code if it stopped by itself, log) of `version`'s frontend from its wheels: a
    fresh interpreter that finds that release's `dynamo` first, no DYN_*/ETCD*/NATS* variable of ours, file
    discovery and every listener on loopback."""
    tree = _release_tree(version)
    discovery = tmp_path / f"discovery-{name}"
    discovery.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYN_", "ETCD", "NATS", "PYTHONPATH"))}
    env.update(
        PYTHONPATH=str(tree),
        DYN_DISCOVERY_BACKEND="file",
        DYN_FILE_KV=str(discovery),
        **{f"DYN_{part}_HOST": "127.0.0.1" for part in ("TCP_RPC", "TCP_RESPONSE_STREAM", "SYSTEM", "EVENT_PLANE")},
        DYN_HTTP_RPC_HOST="127.0.0.1",
    )
    port = free_port_block(1)
    log = tmp_path / f"frontend-{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dynamo.frontend", "--http-host", "127.0.0.1", "--http-port", str(port), *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while not (served := _serving(port)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        code = proc.poll()
    finally:
        _stop(proc)
    return served, code, log.read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("version", list(POLICY_FILE_REFUSALS))
def test_releases_before_1_6_refuse_the_policy_file_and_take_the_weight_flags_dyncc_writes(tmp_path, version):
    # dyncc writes the weights as flags for this release, and no policy file.
    plan = compile_spec(load_spec_text(_weights_spec("disagg", version, **WEIGHTS))).plan
    assert plan.dynamo_version == version and plan.router_policy is None
    flags = list(plan.frontend.flags)
    assert flags[flags.index("--router-temperature") + 1] == "0.7"
    assert flags[flags.index("--router-kv-overlap-score-credit") + 1] == "0.25"
    # That release's frontend serves with them, and does not call them deprecated.
    served, code, text = _run_release_frontend(tmp_path, version, flags, "flags")
    assert served, text[-3000:]
    assert "deprecated" not in text.lower(), text[-3000:]
    # The file dyncc writes for 1.6.1 (which 1.6.1 serves with, above) stops this release's frontend at start-up.
    new, policy = _policy_file(tmp_path, "disagg")
    served, code, text = _run_release_frontend(
        tmp_path, version, [*new.frontend.flags, *new.router_policy_args(str(policy))], "policy"
    )
    assert not served and code not in (None, 0), text[-3000:]
    assert POLICY_FILE_REFUSALS[version] in text, text[-3000:]


@pytest.mark.slow
def test_dynamo_1_5_1_has_no_policy_type_that_takes_the_router_weights(tmp_path):
    # 1.5.1's only linked type refuses the weights as parameters: the file cannot carry them on 1.5.x.
    _new, policy = _policy_file(tmp_path, "agg")
    text = policy.read_text().replace(DEFAULT_POLICY_TYPE, "dynamo-two-tier-cost-fn")
    assert text != policy.read_text()
    policy.write_text(text)
    served, code, log = _run_release_frontend(
        tmp_path, "1.5.1", ["--router-mode", "kv", "--router-policy-config", str(policy)], "two-tier"
    )
    assert not served and code not in (None, 0), log[-3000:]
    assert (
        'invalid parameters for worker-selection policy type "dynamo-two-tier-cost-fn": unknown field '
        "`overlap_score_credit`, expected one of `cache_threshold`, `balance_abs_threshold`" in log
    ), log[-3000:]
