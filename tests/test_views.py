"""graph, explain, schema, init, diff, error carets, completion, generated docs (the CLI in process,
except shell completion, which is the interpreter's entry point reading its environment)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import jsonschema
import pytest
from conftest import EXAMPLES, INVALID_EXAMPLES, ROOT, VALID_EXAMPLES, cli
from ruamel.yaml import YAML

MERMAID_CHECK = ROOT / "tools" / "mermaid-check"


def test_mermaid_output_parses_with_mermaids_own_parser_which_rejects_a_broken_flowchart(tmp_path):
    """Every example's graph, and a broken control that must fail, through one run of Mermaid's parser."""
    assert (MERMAID_CHECK / "node_modules" / "mermaid").is_dir(), "scripts/setup.sh installs tools/mermaid-check"
    graphs = []
    for example in VALID_EXAMPLES:
        graphs.append(tmp_path / f"{example.stem}.mmd")
        proc = cli("graph", example, "--format", "mermaid", "-o", graphs[-1])
        assert proc.returncode == 0, proc.stderr
    broken = tmp_path / "broken.mmd"
    broken.write_text("flowchart LR\n    a[x] -->|y|\n    b[\n")
    check = subprocess.run(
        ["node", MERMAID_CHECK / "check.mjs", *graphs, broken], capture_output=True, text=True, timeout=120
    )
    verdicts = dict(line.split(": ", 1) for line in check.stdout.splitlines())
    assert check.returncode == 1 and verdicts.pop(str(broken)).startswith("PARSE ERROR"), check.stdout + check.stderr
    assert verdicts.keys() == {str(g) for g in graphs}, check.stdout + check.stderr
    for graph, verdict in verdicts.items():
        assert verdict.startswith("parsed") and "flowchart" in verdict, (graph, verdict)


def test_graph_of_disagg_router_shows_the_topology():
    text = cli("graph", EXAMPLES / "disagg_router.yaml", "--format", "mermaid").stdout
    assert "router: kv" in text and "2 x 1 GPU" in text
    assert "pool_prefill ==>|KV transfer NIXL| pool_decode" in text
    assert "pool_prefill -.->|KV events| frontend" in text
    planner = cli("graph", EXAMPLES / "wide_ep.yaml", "--format", "text").stdout
    assert "1 x 16 GPU" in planner and "EP16" in planner and "+attnDP" in planner


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_graph_renders_svg_and_png_with_graphviz(fmt, tmp_path):
    assert shutil.which("dot"), "scripts/setup.sh installs graphviz"
    out = tmp_path / f"g.{fmt}"
    assert cli("graph", EXAMPLES / "disagg_router.yaml", "--format", fmt, "-o", out).returncode == 0
    data = out.read_bytes()
    if fmt == "svg":
        assert ET.fromstring(data).tag.endswith("svg") and b"prefill" in data
    else:
        assert data.startswith(b"\x89PNG") and len(data) > 1000


def test_explain_wide_ep_shows_sixteen_ranks_over_four_nodes_and_origins():
    text = cli("explain", EXAMPLES / "wide_ep.yaml").stdout
    decode_rows = [l for l in text.splitlines() if l.startswith("| ") and "| decode | 0 |" in l]
    assert len(decode_rows) == 16
    assert {l.split("|")[1].strip() for l in decode_rows} == {"0", "1", "2", "3"}
    assert "| decode | 1 | 16 | 4 | 16 |" in text
    assert "wide_ep.yaml:" in text  # user-set values carry file:line
    assert "default: TRT-LLM and Dynamo default (32)" in text
    assert "rule DYN301" in text  # the KV events the compiler turned on


def test_schema_is_current_and_validates_every_example():
    proc = cli("schema")
    schema = json.loads(proc.stdout)
    assert (ROOT / "dyncc" / "spec" / "dyncc-v1.schema.json").read_text() == proc.stdout, (
        "run: dyncc schema -o dyncc/spec/dyncc-v1.schema.json"
    )
    validator = jsonschema.Draft202012Validator(schema)
    for example in VALID_EXAMPLES:
        assert list(validator.iter_errors(YAML(typ="safe").load(example.read_text()))) == [], example
        assert example.read_text().startswith("# yaml-language-server: $schema=../dyncc/spec/dyncc-v1.schema.json")
    # Shape errors are schema errors too (cross-field rules are dyncc's alone).
    for code in ("DYN010", "DYN012", "DYN013", "DYN014"):
        (bad,) = [p for p in INVALID_EXAMPLES if p.name.startswith(code)]
        assert list(validator.iter_errors(YAML(typ="safe").load(bad.read_text()))), bad


@pytest.mark.parametrize("template", ["agg", "disagg", "disagg-router", "wide-ep", "mtp", "eagle"])
def test_every_init_template_validates_as_written(template, tmp_path):
    out = tmp_path / f"{template}.yaml"
    proc = cli("init", "--template", template, "--name", "team-llm", "-o", out)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "\nname: team-llm" in text and text.count("#") > 5
    assert cli("validate", out).returncode == 0
    assert cli("init", "--template", template, "-o", out).returncode == 1  # never overwrites


def test_diff_agg_vs_agg_router_names_router_mode_and_kv_events():
    proc = cli("diff", EXAMPLES / "agg.yaml", EXAMPLES / "agg_router.yaml")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "frontend: flag --router-mode: round-robin -> kv" in out
    assert "agg: added flag --publish-kv-events" in out
    assert "agg: replicas: 1 -> 2" in out
    assert "k8s: configmap.yaml, dynamographdeployment.yaml, kustomization.yaml change" in out


def test_errors_show_the_source_line_with_a_caret():
    proc = cli("validate", EXAMPLES / "invalid" / "DYN014_not-an-option.yaml")
    lines = proc.stderr.splitlines()
    i = next(i for i, l in enumerate(lines) if "error DYN014" in l)
    assert lines[i + 1].startswith(" 8 |   mode: kv-aware")
    assert lines[i + 2] == "   |         ^^^^^^^^"
    assert "did you mean `kv`?" in proc.stderr


def test_shell_completion_script():
    env = {**os.environ, "_DYNCC_COMPLETE": "bash_source"}
    proc = subprocess.run([sys.executable, "-m", "dyncc"], env=env, capture_output=True, text=True)
    assert "complete" in proc.stdout and "_dyncc_completion" in proc.stdout


def test_generated_docs_are_current(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from gen_docs import spec_reference

    from dyncc.deployment import schema

    assert (ROOT / "docs" / "spec-reference.md").read_text() == spec_reference(schema()), "run scripts/gen_docs.py"
    assert ET.fromstring((ROOT / "docs" / "disagg_router.svg").read_bytes()).tag.endswith("svg")
