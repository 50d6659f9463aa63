"""Reply parsers, the custom chat template, router reset and model revision: first-class keys that every
target realizes (checked by the releases' own argument parsers) or refuses with a code."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml
from conftest import assert_no_traceback, cli, parse_with_dynamo_0_5_1
from dynamo_parsers import DYNAMO_AVAILABLE, parse_frontend, parse_trtllm

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>\n"


def _spec(tmp_path: Path, model_extra: str = "", rest: str = "", version: str = "1.6.1") -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "chat.jinja").write_text(TEMPLATE)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: kimi\n"
        f"dynamo: {{version: {version}}}\n"
        f"model:\n  path: moonshotai/Kimi-K2-Instruct\n  moe: false\n{model_extra}"
        "pools:\n  prefill: {}\n  decode: {}\n" + rest
    )
    return spec


PARSERS = "  tool_call_parser: kimi_k2\n  reasoning_parser: deepseek_r1\n  chat_template: templates/chat.jinja\n"


def _worker_argv(launch: Path, root: Path) -> list[str]:
    line = next(line for line in launch.read_text().splitlines() if "dynamo.trtllm" in line and "prefill" in line)
    words = shlex.split(line.replace('"$HERE', f'"{root}').replace('"$PYTHON"', "python3"))
    return words[words.index("dynamo.trtllm") + 1 :]


@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_parsers_and_template_reach_every_target_and_dynamo_1_6_1_accepts_them(tmp_path):
    spec = _spec(tmp_path, PARSERS)
    out = tmp_path / "out"
    proc = cli("build", spec, "-t", "local", "-t", "slurm", "-t", "compose", "-t", "k8s", "-o", out)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    # Every target ships the same template bytes beside its engine configs ...
    for target in ("local", "slurm", "compose"):
        assert (out / target / "engine" / "chat_template.jinja").read_text() == TEMPLATE
    configmap = yaml.safe_load((out / "k8s" / "configmap.yaml").read_text())
    assert configmap["data"]["chat_template.jinja"] == TEMPLATE
    # ... and every worker command names it and the parsers: Dynamo 1.6.1's parser checks the file exists.
    config = parse_trtllm(_worker_argv(out / "local" / "launch.sh", out / "local"))
    assert (config.dyn_tool_call_parser, config.dyn_reasoning_parser) == ("kimi_k2", "deepseek_r1")
    assert config.custom_jinja_template == str(out / "local" / "engine" / "chat_template.jinja")
    for target, file in (
        ("slurm", "job.sbatch"),
        ("compose", "docker-compose.yaml"),
        ("k8s", "dynamographdeployment.yaml"),
    ):
        text = (out / target / file).read_text()
        assert text.count("--dyn-tool-call-parser") >= 2 and "engine/chat_template.jinja" in text, target


def test_a_parser_the_release_lacks_is_refused_with_its_names(tmp_path):
    spec = _spec(tmp_path, "  tool_call_parser: kimi_k2\n", version="0.5.1")
    proc = cli("validate", spec)
    assert proc.returncode == 1 and "error DYN125" in proc.stderr + proc.stdout
    assert "Dynamo 0.5.1 has: deepseek_v3_1" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("model_extra", "rest", "path"),
    [
        ("  chat_template: templates/chat.jinja\n", "", "model.chat_template"),
        ("", "planner: {enabled: true, ttft_ms: 500, itl_ms: 20}\n", "planner.enabled"),
        ("", "kvbm: {enabled: true}\n", "kvbm.enabled"),
    ],
)
def test_what_dynamo_0_5_1_cannot_run_is_refused_naming_the_release(tmp_path, model_extra, rest, path):
    proc = cli("validate", "--format", "json", _spec(tmp_path, model_extra, rest, version="0.5.1"))
    errors = [d for d in json.loads(proc.stdout)["files"][0]["diagnostics"] if d["severity"] == "error"]
    assert proc.returncode == 1 and [(d["code"], d["path"]) for d in errors] == [("DYN703", path)], errors


def test_router_reset_is_refused_where_the_release_removed_it(tmp_path):
    proc = cli("validate", "--format", "json", _spec(tmp_path, rest="router: {mode: kv, reset_states: true}\n"))
    errors = [d for d in json.loads(proc.stdout)["files"][0]["diagnostics"] if d["severity"] == "error"]
    assert [(d["code"], d["path"]) for d in errors] == [("DYN703", "router.reset_states")]
    assert "Dynamo 1.3.1 was the last release with it" in errors[0]["message"]


def test_dynamo_0_5_1s_own_parsers_accept_its_parsers_and_router_reset(tmp_path):
    spec = _spec(
        tmp_path,
        "  tool_call_parser: deepseek_v3_1\n  reasoning_parser: deepseek_r1\n",
        "router: {mode: kv, reset_states: true}\n",
        version="0.5.1",
    )
    out = tmp_path / "out"
    assert cli("build", spec, "-t", "local", "-o", out).returncode == 0
    launch = (out / "local" / "launch.sh").read_text().splitlines()
    frontend = next(line for line in launch if "dynamo.frontend" in line)
    fwords = shlex.split(frontend.replace('"$PYTHON"', "python3"))
    items = [
        {"kind": "frontend", "argv": fwords[fwords.index("dynamo.frontend") + 1 :]},
        {"kind": "trtllm", "argv": _worker_argv(out / "local" / "launch.sh", out / "local")},
    ]
    front, worker = parse_with_dynamo_0_5_1(items)
    assert front["ok"] and worker["ok"], (front, worker)
    assert front["router_reset_states"] is True
    assert (worker["tool_call_parser"], worker["reasoning_parser"]) == ("deepseek_v3_1", "deepseek_r1")


@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_model_revision_reaches_local_and_compose_workers(tmp_path):
    spec = _spec(tmp_path, "  revision: 5f3c2a1\n")
    out = tmp_path / "out"
    assert cli("build", spec, "-t", "local", "-t", "compose", "-o", out).returncode == 0
    config = parse_trtllm(_worker_argv(out / "local" / "launch.sh", out / "local"))
    assert config.revision == "5f3c2a1"
    compose = yaml.safe_load((out / "compose" / "docker-compose.yaml").read_text())
    commands = [s["command"] for name, s in compose["services"].items() if name.startswith(("prefill", "decode"))]
    assert commands and all(c[c.index("--revision") + 1] == "5f3c2a1" for c in commands)
    assert parse_frontend([]) is not None  # the frontend takes no revision: nothing else changed


def test_model_revision_where_the_worker_cannot_fetch_it_is_refused(tmp_path):
    spec = _spec(tmp_path, "  revision: 5f3c2a1\n", version="0.5.1")
    proc = cli("build", spec, "-t", "local", "-o", tmp_path / "out")
    assert proc.returncode == 1 and "error DYN563" in proc.stderr
    assert cli("build", spec, "-t", "slurm", "-o", tmp_path / "out").returncode == 0  # its download step fetches it
