"""Hostile strings in every free-text field: rejected with a coded error, or carried through as inert
data. Proven by executing the generated bash and sbatch scripts for real, with recording stand-ins for
python3/srun/scontrol on PATH: the stand-ins record the argv and environment they receive, and canary
files show whether any injected command ran."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml as pyyaml
from conftest import assert_no_traceback, cli, process_stats
from ruamel.yaml import YAML

# Each case executes a generated script (bash or sbatch) with recording stand-ins: the full suite runs them.
pytestmark = pytest.mark.slow


def hostile_strings(canary_dir: Path) -> list[str]:
    c = canary_dir
    return [
        f"$(touch {c}/c1)",
        f"`touch {c}/c2`",
        f"x; touch {c}/c3",
        f"x && touch {c}/c4",
        f"'; touch {c}/c5; '",
        f'"; touch {c}/c6; "',
        "*",
        "~root",
        "$HOME",
        "${PATH}",
        "a|b",
        "a>b",
        "<(id)",
        "ünïcødé 🚀",
        "\\",
        "!!",
        f"$'\\x41' $(touch {c}/c7)",
    ]


def _recorder(tmp: Path) -> Path:
    """A stand-in for python3 (and the workers it would start) that writes down what it was given."""
    path = tmp / "bin" / "recorder"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""#!{sys.executable}
import json, os, sys, time
if sys.argv[1:] and sys.argv[1].endswith("ready.py"):
    sys.exit(0)  # the deployment is "ready" at once
with open(os.environ["DYNCC_RECORD"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
if sys.argv[1:] and sys.argv[1].endswith("download.py"):
    # The Slurm model download step "finishes" at once, saying where the snapshot landed; workers start after it.
    with open(sys.argv[4], "w") as f:
        f.write("/cache/snapshot\\n")
    sys.exit(0)
time.sleep(60)
""")
    path.chmod(0o755)
    return path


def _write_spec(tmp: Path, hostile: str, env_value: str, model_path: str | None = None) -> Path:
    spec = {
        "apiVersion": "dyncc/v1",
        "name": "inject",
        "image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1",
        "model": {"path": hostile if model_path is None else model_path, "served_name": hostile, "moe": False},
        "local": {"http_port": 23000, "system_port_base": 23001},
        "slurm": {"http_port": 23100, "system_port_base": 23101},
        "pools": {"prefill": {"env": {"INJECT_ME": env_value}}, "decode": {"env": {"INJECT_ME": env_value}}},
    }
    path = tmp / "spec.yaml"
    path.write_text(pyyaml.safe_dump(spec, allow_unicode=True))
    return path


SAFE_MODEL = "Qwen/Qwen3-0.6B"


def _build_hostile(tmp: Path, hostile: str, env_value: str, target: str) -> str:
    """Build with the hostile string as model path, served name and (in) an env value; the model path
    used. A path dyncc refuses with a coded error (`~root`: no shell expands it) is a pass for that
    field, and the build is redone with a plain model path so the other fields are still run."""
    proc = cli("build", _write_spec(tmp, hostile, env_value), "-t", target, "-o", tmp / "out")
    if proc.returncode == 0:
        return hostile
    assert_no_traceback(proc)
    assert proc.returncode == 1 and re.search(r"error DYN\d{3}: model\.path", proc.stderr), proc.stderr
    proc = cli("build", _write_spec(tmp, hostile, env_value, SAFE_MODEL), "-t", target, "-o", tmp / "out")
    assert proc.returncode == 0, proc.stderr
    return SAFE_MODEL


def _run_until_ready(cmd: list, env: dict, cwd: Path, expected_starts: int, record: Path) -> None:
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if record.exists() and len(record.read_text().splitlines()) >= expected_starts:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    before = _proc_status(proc.pid)
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired as exc:
        # Seen once in ten full runs and not reproduced alone: say what state the script was in, before
        # the signal and after, and which of its children were left (one may hold its output pipe open).
        after = _proc_status(proc.pid)
        children = [_proc_status(child) for child, fields in process_stats() if int(fields[1]) == proc.pid]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(
            f"the script did not stop within 30 s of SIGTERM; its state before: {before}; after: {after}; "
            f"its children: {children}; output: {exc.output!r}"
        )
    assert record.exists(), out


def _proc_status(pid: int) -> str:
    """A process's run state and signal masks (blocked, ignored, caught, pending), from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as exc:
        return f"unreadable ({exc})"
    fields = [line for line in status.splitlines() if line.startswith(("Name", "Pid", "State", "Sig", "ShdPnd"))]
    return "; ".join([*fields, f"wchan: {wchan}"])


def _records(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def _assert_carried_as_data(record: Path, canaries: Path, hostile: str, env_value: str, model_path: str) -> None:
    """No injected command ran, and both workers got the hostile strings exactly, as argv and env."""
    assert list(canaries.iterdir()) == [], "an injected command ran"
    workers = [r for r in _records(record) if "dynamo.trtllm" in r["argv"]]
    assert len(workers) == 2
    for worker in workers:
        argv = worker["argv"]
        assert argv[argv.index("--model") + 1] == model_path
        assert argv[argv.index("--served-model-name") + 1] == hostile
        assert worker["env"]["INJECT_ME"] == env_value


def _indexes(indexes: list[int], fast: set[int]) -> list:
    """Each run of a generated script costs ~1 s: the fast lane runs one string of each kind (command
    substitution, quoting, the ANSI-C/`$(...)` mix); the rest are `slow`, run by the full suite."""
    return [pytest.param(i, marks=() if i in fast else pytest.mark.slow) for i in indexes]


@pytest.mark.parametrize("index", _indexes(list(range(17)), fast={0, 5, 16}))
def test_local_launch_script_carries_hostile_strings_as_data(tmp_path, index):
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    hostile = hostile_strings(canaries)[index]
    env_value = f"v\n$(touch {canaries}/env)\n`touch {canaries}/env2`; {hostile}"
    model_path = _build_hostile(tmp_path, hostile, env_value, "local")
    record = tmp_path / "record.jsonl"
    env = {**os.environ, "DYNCC_PYTHON": str(_recorder(tmp_path)), "DYNCC_RECORD": str(record)}
    _run_until_ready(["bash", str(tmp_path / "out" / "local" / "launch.sh")], env, tmp_path, 3, record)
    _assert_carried_as_data(record, canaries, hostile, env_value, model_path)


@pytest.mark.parametrize("index", _indexes([0, 1, 2, 4, 5, 16], fast={4}))
def test_sbatch_carries_hostile_strings_as_data(tmp_path, index):
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    hostile = hostile_strings(canaries)[index]
    env_value = f"$(touch {canaries}/env); {hostile}"
    model_path = _build_hostile(tmp_path, hostile, env_value, "slurm")
    job_dir = tmp_path / "out" / "slurm"
    bin_dir = tmp_path / "bin"
    recorder = _recorder(tmp_path)
    # srun: drop its options and run the step locally; scontrol: one node; python3: the recorder.
    (bin_dir / "srun").write_text('#!/bin/bash\nwhile [ $# -gt 0 ] && [ "$1" != bash ]; do shift; done\nexec "$@"\n')
    (bin_dir / "scontrol").write_text("#!/bin/bash\necho node1\n")
    (bin_dir / "python3").symlink_to(recorder)
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    record = tmp_path / "record.jsonl"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DYNCC_PYTHON": str(recorder),
        "DYNCC_RECORD": str(record),
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_NODELIST": "node1",
        "SLURM_SUBMIT_DIR": str(job_dir),
    }
    # frontend + 2 workers, and the model download step first when the model comes from the hub
    downloads = (job_dir / "download.py").exists()
    _run_until_ready(["bash", str(job_dir / "job.sbatch")], env, job_dir, 4 if downloads else 3, record)
    if downloads:  # the hub id reaches the download step as one argument; workers serve the snapshot it wrote
        (download,) = [r for r in _records(record) if r["argv"][0].endswith("download.py")]
        assert download["argv"][1] == model_path
        model_path = "/cache/snapshot"
    _assert_carried_as_data(record, canaries, hostile, env_value, model_path)


def test_k8s_manifests_keep_hostile_strings_as_strings(tmp_path):
    hostile = hostile_strings(tmp_path)
    spec = _write_spec(tmp_path, hostile[0], "1")
    assert cli("build", spec, "-t", "k8s", "-o", tmp_path / "out").returncode == 0
    dgd = YAML(typ="safe").load((tmp_path / "out" / "k8s" / "dynamographdeployment.yaml").read_text())
    prefill = next(c for c in dgd["spec"]["components"] if c["type"] == "prefill")
    (main,) = prefill["podTemplate"]["spec"]["containers"]
    assert main["args"][main["args"].index("--model") + 1] == hostile[0]
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["INJECT_ME"] == "1" and isinstance(env["INJECT_ME"], str)


@pytest.mark.parametrize(
    "field,value",
    [
        (("pools", "agg", "env"), {"A;touch x": "1"}),
        (("pools", "agg", "env"), {"$(id)": "1"}),
        (("image",), "repo/img:tag; rm -rf /"),
        (("image",), "$(id)"),
        (("slurm", "container_mounts"), ["/data:/data,/etc:/host-etc"]),
        (("slurm", "container_mounts"), ["/a:/b$(id)"]),
        (("namespace",), "dyn;amo"),
        (("k8s", "namespace"), "Prod Namespace"),
        (("slurm", "partition"), "gpu; scancel -u root"),
        (("model", "served_name"), "line\nbreak"),
        (("model", "path"), "nul\x00byte"),
    ],
)
def test_fields_that_cannot_carry_such_strings_reject_them(tmp_path, field, value):
    spec = {"apiVersion": "dyncc/v1", "name": "inject", "model": {"path": "m"}, "pools": {"agg": {}}}
    node = spec
    for part in field[:-1]:
        node = node.setdefault(part, {})
    node[field[-1]] = value
    path = tmp_path / "s.yaml"
    path.write_text(pyyaml.safe_dump(spec, allow_unicode=True))
    proc = cli("validate", "--format", "json", path)
    assert proc.returncode == 1
    codes = {d["code"] for d in json.loads(proc.stdout)["files"][0]["diagnostics"]}
    assert codes <= {"DYN012", "DYN013", "DYN001"} and codes, codes
