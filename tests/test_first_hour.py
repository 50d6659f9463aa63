"""A newcomer's first hour (issue 34): the words dyncc prints are right at their source, and `dyncc up`
says before starting anything when the engine a spec needs is not installed."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import jsonschema
import pytest
from conftest import EXAMPLES, ROOT, VALID_EXAMPLES, assert_no_traceback, cli, run_dyncc
from ruamel.yaml import YAML

from dyncc.codes import lookup, registry
from dyncc.spec.model import RouterMode

# --- the registry's words ---------------------------------------------------------------------------


def test_dyn014_lists_exactly_the_router_modes_the_loader_accepts(tmp_path):
    info = lookup("DYN014")
    assert info is not None
    listed = re.search(r"`router\.mode`: ([^)]*)\)", info.explanation)
    assert listed, info.explanation
    assert sorted(m.strip() for m in listed.group(1).split(",")) == sorted(typing.get_args(RouterMode))
    spec = tmp_path / "s.yaml"  # the value the old text listed is refused
    spec.write_text((EXAMPLES / "agg.yaml").read_text() + "router: {mode: kv-approx}\n")
    proc = cli("validate", spec)
    assert proc.returncode == 1 and "error DYN014: router.mode: 'kv-approx'" in proc.stderr, proc.stderr


def test_an_unknown_code_names_the_registrys_range():
    codes = sorted(registry())
    proc = cli("explain-code", "DYN999")
    assert proc.returncode == 2
    assert f"from {codes[0]} to {codes[-1]}" in proc.stderr, proc.stderr
    assert codes[-1] >= "DYN970" and "DYN803" not in proc.stderr


# --- explain: a default is shown as a default, a line only where the file has the key ----------------


def test_explain_shows_pool_field_defaults_as_defaults():
    proc = cli("explain", EXAMPLES / "agg.yaml")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split(" | ")[0].strip("| "): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    assert "default: pools.agg.pipeline_parallel not set in the spec" in rows["pipeline_parallel_size"]
    assert "agg.yaml:" not in rows["pipeline_parallel_size"] and "agg.yaml:" not in rows["enable_attention_dp"]
    assert re.search(r"spec pools\.agg\.tensor_parallel \(\S*examples/agg\.yaml:17:22\)", rows["tensor_parallel_size"])


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_every_line_explain_credits_holds_the_key_it_names(example):
    proc = cli("explain", example)
    assert proc.returncode == 0, proc.stderr
    credited = re.findall(r"spec (\S+) \((\S+):(\d+):\d+\)", proc.stdout)
    assert credited, "explain names spec lines (the check can fail)"
    lines = example.read_text().splitlines()
    for path, _file, line in credited:
        key = path.rsplit(".", 1)[-1]
        assert re.search(rf"\b{re.escape(key)}\s*:", lines[int(line) - 1]), (path, line, lines[int(line) - 1])


# --- diff: a value written out equal to its default is the same spec --------------------------------


def test_diff_of_an_explicit_replica_count_is_a_change_not_an_addition(tmp_path):
    text = (EXAMPLES / "agg.yaml").read_text()
    assert "    replicas: 1\n" in text
    three = tmp_path / "three.yaml"
    three.write_text(text.replace("    replicas: 1\n", "    replicas: 3\n"))
    left_out = tmp_path / "left-out.yaml"
    left_out.write_text(text.replace("    replicas: 1\n", ""))
    proc = cli("diff", EXAMPLES / "agg.yaml", three)
    assert proc.returncode == 0, proc.stderr
    assert "pools.agg.replicas: 1 -> 3" in proc.stdout and "added" not in proc.stdout, proc.stdout
    same = cli("diff", EXAMPLES / "agg.yaml", left_out)  # `replicas: 1` written out or left out: one spec
    assert same.stdout.split("# deployment")[0].strip() == "# spec", same.stdout
    from_default = cli("diff", left_out, three)
    assert "pools.agg.replicas: 1 -> 3" in from_default.stdout, from_default.stdout


def test_diff_exit_code_says_whether_anything_differs(tmp_path):
    """`--exit-code`: 1 when the spec, the deployment or a file differs, 0 for one spec written two ways."""
    text = (EXAMPLES / "agg.yaml").read_text()
    left_out = tmp_path / "left-out.yaml"
    left_out.write_text(text.replace("    replicas: 1\n", ""))
    three = tmp_path / "three.yaml"
    three.write_text(text.replace("    replicas: 1\n", "    replicas: 3\n"))
    assert cli("diff", EXAMPLES / "agg.yaml", left_out, "--exit-code").returncode == 0
    changed = cli("diff", EXAMPLES / "agg.yaml", three, "--exit-code")
    assert changed.returncode == 1 and "pools.agg.replicas: 1 -> 3" in changed.stdout
    assert cli("diff", EXAMPLES / "agg.yaml", three).returncode == 0  # without it, a report is not a failure
    release = cli("diff", EXAMPLES / "agg.yaml", "--new-version", "1.3.1", "--exit-code")
    assert release.returncode == 1, release.stdout  # other flags and files on another release


def test_diff_names_a_whole_new_section_once():
    proc = cli("diff", EXAMPLES / "agg.yaml", EXAMPLES / "disagg_router.yaml")
    assert proc.returncode == 0, proc.stderr
    spec_part = proc.stdout.split("# deployment")[0]
    assert re.search(r"^  pools\.decode: added \(", spec_part, re.MULTILINE), spec_part
    assert re.search(r"^  pools\.agg: removed, was \(", spec_part, re.MULTILINE), spec_part
    assert "pools.decode.replicas" not in spec_part


# --- init: a schema reference that survives a commit ------------------------------------------------


def test_init_writes_no_install_path_and_its_schema_note_works(tmp_path):
    spec = tmp_path / "my-llm.yaml"
    proc = cli("init", "--template", "disagg-router", "-n", "my-llm", "-o", spec)
    assert proc.returncode == 0, proc.stderr
    text = spec.read_text()
    assert not re.search(r"^# yaml-language-server:", text, re.MULTILINE), "a modeline to an install path"
    assert str(ROOT) not in text and sys.prefix not in text and "://" not in text
    # Do what the note says: the schema beside the spec, the relative modeline first. Editors resolve it
    # against the spec's directory; here the schema validates the spec.
    note = text.splitlines()[:2]
    assert "dyncc schema -o dyncc.schema.json" in note[0], note
    modeline = re.search(r"`(# yaml-language-server: \$schema=(\S+))`", note[1])
    assert modeline and modeline.group(2) == "dyncc.schema.json", note
    assert cli("schema", "-o", tmp_path / modeline.group(2)).returncode == 0
    spec.write_text(modeline.group(1) + "\n" + text)
    schema = YAML(typ="safe").load((tmp_path / modeline.group(2)).read_text())
    jsonschema.Draft202012Validator(schema).validate(YAML(typ="safe").load(spec.read_text()))
    assert cli("validate", spec).returncode == 0


def test_init_from_sla_writes_the_same_schema_note():
    from dyncc.spec.schema import SCHEMA_NOTE
    from dyncc.tools import sla as commands

    source = Path(commands.__file__).read_text()
    assert "SCHEMA_NOTE" in source and "yaml-language-server: $schema=http" not in source
    assert "$schema=dyncc.schema.json" in SCHEMA_NOTE


# --- a bad name: the rule in words --------------------------------------------------------------------


def test_a_bad_name_states_the_rule_in_words_and_a_fix(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text((EXAMPLES / "agg.yaml").read_text().replace("name: qwen3-agg", "name: Team_LLM.v2"))
    proc = cli("validate", spec)
    assert proc.returncode == 1
    assert "error DYN013: name: 'Team_LLM.v2' is not a DNS label: lower-case letters, digits and '-'" in proc.stderr
    assert "hint: for example 'team-llm-v2'" in proc.stderr
    assert "^[a-z0-9]" not in proc.stdout + proc.stderr and "pattern" not in proc.stderr


# --- the fuzz count under xdist -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_fuzz_count_is_printed_under_xdist(tmp_path):
    env = {**os.environ, "DYNCC_FUZZ_CASES": "20"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-m", "slow", "tests/test_fuzz.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "created: 2/2 workers" in proc.stdout or "2 workers" in proc.stdout, proc.stdout[-3000:]
    counted = re.search(r"^fuzz: (\d+) cases run \((\d+) built, (\d+) rejected", proc.stdout, re.MULTILINE)
    assert counted, proc.stdout[-3000:]
    cases, built, rejected = map(int, counted.groups())
    assert cases >= 20 and built + rejected == cases


# --- up: the engine the spec needs, before anything starts --------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("tensorrt_llm") is not None, reason="TensorRT-LLM is installed here")
def test_up_without_tensorrt_llm_is_a_coded_hint_before_anything_starts(tmp_path):
    proc = run_dyncc("up", EXAMPLES / "agg.yaml", "-o", tmp_path / "out", timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert_no_traceback(proc)
    assert "error DYN524: cannot start: TensorRT-LLM is not installed" in proc.stderr, proc.stderr
    assert "hint: use --engine mocker, or install TensorRT-LLM 1.3.0rc29" in proc.stderr
    assert not (tmp_path / "out").exists(), "nothing written, nothing started"


@pytest.mark.slow
def test_up_checks_the_python_named_by_dyncc_python(tmp_path):
    bare = tmp_path / "bare"  # a Python without Dynamo
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", bare], check=True, timeout=120)
    env = {**os.environ, "DYNCC_PYTHON": str(bare / "bin" / "python")}
    proc = subprocess.run(
        [sys.executable, "-m", "dyncc", "up", EXAMPLES / "agg.yaml", "--engine", "mocker", "-o", tmp_path / "out"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert_no_traceback(proc)
    assert f"error DYN524: cannot start: Dynamo (ai-dynamo) is not installed for {bare}" in proc.stderr
    assert "TensorRT-LLM" not in proc.stderr  # the mock engine needs none


def test_launch_scripts_run_dynamo_with_the_python_that_runs_dyncc(tmp_path, monkeypatch):
    from dyncc.tools.lifecycle.run import Deployment

    monkeypatch.delenv("DYNCC_PYTHON", raising=False)
    script = tmp_path / "launch.sh"
    script.write_text('echo "python=$DYNCC_PYTHON"\n')
    deployment = Deployment(script)
    assert deployment.wait() == 0
    assert not deployment.wait_ready(30)  # returns once the script's output is read to the end; no URL in it
    assert deployment.lines == [f"python={sys.executable}"]


@pytest.mark.parametrize("template", sorted(p.stem for p in (ROOT / "dyncc" / "starters").glob("*.yaml")))
def test_a_starter_fits_the_gpus_it_names_or_any_gpu_dyncc_knows(template, tmp_path):
    """`init --template T` validates as written; one that names no cluster.gpu_type must fit every GPU dyncc has
    facts for, else naming the reader's GPU would turn it into a memory error (DYN140-142) they did not write."""
    from dyncc.facts import gpu_names
    from dyncc.spec.schema import starter_text

    text = starter_text(template)
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    assert cli("validate", spec).returncode == 0
    if re.search(r"^  gpu_type:", text, re.M):
        return
    refused = {}
    for name in gpu_names():
        spec.write_text(text.replace("cluster:\n", f"cluster:\n  gpu_type: {name}\n", 1))
        proc = cli("validate", spec)
        if proc.returncode != 0:
            refused[name] = sorted(set(re.findall(r"error (DYN\d+)", proc.stderr)))
    assert not refused, refused
