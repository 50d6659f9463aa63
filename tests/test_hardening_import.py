"""`dyncc import` under hostile input: every file goes through the input gate, every manifest value of a shape
Kubernetes or TensorRT-LLM would refuse is a coded error at its position, and what the import writes holds
only data taken from the manifests (a comment never becomes a key; nothing drives the terminal).

In process (`import_dgd`, `cli`) except where the real interpreter's bounds are the point."""

from __future__ import annotations

import copy
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import assert_no_traceback, cli, run_dyncc

from dyncc.diagnostics import DiagnosticError
from dyncc.spec.input_gate import load_yaml_data
from dyncc.tools.importer import comment_text, import_dgd

DGD = {
    "apiVersion": "nvidia.com/v1beta1",
    "kind": "DynamoGraphDeployment",
    "metadata": {"name": "llm"},
    "spec": {
        "env": [{"name": "HF_HOME", "value": "/cache"}],
        "components": [
            {
                "name": "Frontend",
                "type": "frontend",
                "replicas": 1,
                "podTemplate": {
                    "spec": {
                        "containers": [
                            {
                                "name": "main",
                                "image": "registry.example/trtllm:1.6.1",
                                "command": ["python3", "-m", "dynamo.frontend"],
                                "args": ["--router-mode", "kv", "--router-temperature", "0.5"],
                            }
                        ]
                    }
                },
            },
            {
                "name": "worker",
                "type": "worker",
                "replicas": 2,
                "multinode": {"nodeCount": 1},
                "podTemplate": {
                    "spec": {
                        "containers": [
                            {
                                "name": "main",
                                "image": "registry.example/trtllm:1.6.1",
                                "command": ["python3", "-m", "dynamo.trtllm"],
                                "args": ["--model-path", "org/model", "--extra-engine-args", "/cfg/agg.yaml"],
                                "env": [{"name": "LOG_LEVEL", "value": "info"}],
                                "resources": {"limits": {"nvidia.com/gpu": "2"}},
                                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
                            }
                        ],
                        "volumes": [{"name": "cfg", "configMap": {"name": "engine"}}],
                    }
                },
            },
        ],
    },
}
CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "engine"},
    "data": {"agg.yaml": "tensor_parallel_size: 2\nkv_cache_config: {free_gpu_memory_fraction: 0.8}\n"},
}


def _write(path: Path, *docs: Any) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``node``: each mapping value and list item, at any depth."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _replaced(doc: Any, path: tuple, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


# Values of the wrong shape almost anywhere: a list, a mapping, text, a float, a boolean, null.
HOSTILE = ([1], {"k": 1}, "x y", 2.5, True, None)


@pytest.mark.slow
def test_any_value_of_any_shape_imports_or_is_a_coded_error(tmp_path):
    """Every value of the manifest and its ConfigMap, replaced by each hostile value: the import ends in a
    spec or in coded errors, never in another exception (25 of these were internal errors, S2-04)."""
    tried, coded = 0, 0
    for doc_index, base in enumerate((DGD, CONFIG_MAP)):
        for path in _paths(base):
            for value in HOSTILE:
                docs = [DGD, CONFIG_MAP]
                docs[doc_index] = _replaced(base, path, value)
                manifest = _write(tmp_path / "m.yaml", *docs)
                tried += 1
                try:
                    import_dgd([manifest])
                except DiagnosticError as exc:
                    coded += 1
                    assert all(re.fullmatch(r"DYN\d{3}", d.code) for d in exc.diagnostics)
    assert tried > 400 and 0 < coded < tried, (tried, coded)


@pytest.mark.parametrize(
    ("what", "change", "code", "at"),
    [
        ("replicas", {"replicas": "two"}, "DYN970", "spec.components[1].replicas"),
        ("replicas-inf", {"replicas": float("inf")}, "DYN970", "spec.components[1].replicas"),
        ("env-items", {"podTemplate.env": [1, 2]}, "DYN970", "spec.components[1].podTemplate.spec.containers[0].env"),
        ("gpu-quantity", {"podTemplate.gpu": "500m"}, "DYN970", "spec.components[1].podTemplate.spec.containers[0]"),
        ("kv-block-size", {"args": ["--model-path", "m", "--kv-block-size", "abc"]}, "DYN970", "spec.components[1]"),
        ("sh-c-unclosed", {"sh": "python3 -m dynamo.trtllm --model-path 'm"}, "DYN970", "spec.components[1]"),
    ],
)
def test_a_manifest_value_kubernetes_would_refuse_is_located(tmp_path, what, change, code, at):
    dgd = copy.deepcopy(DGD)
    worker = dgd["spec"]["components"][1]
    main = worker["podTemplate"]["spec"]["containers"][0]
    for key, value in change.items():
        if key == "podTemplate.env":
            main["env"] = value
        elif key == "podTemplate.gpu":
            main["resources"]["limits"]["nvidia.com/gpu"] = value
        elif key == "args":
            main["args"] = value
        elif key == "sh":
            main["command"], main["args"] = ["/bin/sh", "-c", value], []
        else:
            worker[key] = value
    manifest = _write(tmp_path / "dgd.yaml", dgd, CONFIG_MAP)
    with pytest.raises(DiagnosticError) as exc:
        import_dgd([manifest])
    first = exc.value.diagnostics[0]
    assert first.code == code and first.location is not None and first.location.file == str(manifest), first
    assert ".".join(str(p) for p in first.path).startswith(at.split("[")[0]), first
    assert first.location.line > 1, first


@pytest.mark.parametrize(
    "engine",
    ["- a\n", "kv_cache_config: [1]\n", "tensor_parallel_size: many\n", "cuda_graph_config: 3\n", "a: [unclosed\n"],
)
def test_an_engine_config_tensorrt_llm_would_refuse_is_a_coded_error(tmp_path, engine):
    config_map = copy.deepcopy(CONFIG_MAP)
    config_map["data"]["agg.yaml"] = engine
    manifest = _write(tmp_path / "dgd.yaml", DGD, config_map)
    with pytest.raises(DiagnosticError) as exc:
        import_dgd([manifest])
    (error, *_) = exc.value.diagnostics
    assert error.code in ("DYN970", "DYN001"), error
    assert error.location is not None and "ConfigMap engine, key agg.yaml" in error.location.file, error


def test_lax_values_tensorrt_llm_reads_are_read_the_same_way(tmp_path):
    """TensorRT-LLM's own pydantic fields read `"2"` as 2 and `"false"` as False: so does the import."""
    config_map = copy.deepcopy(CONFIG_MAP)
    config_map["data"]["agg.yaml"] = 'tensor_parallel_size: "2"\ndisable_overlap_scheduler: "false"\n'
    result = import_dgd([_write(tmp_path / "dgd.yaml", DGD, config_map)])
    agg = result.spec["pools"]["agg"]
    assert agg["tensor_parallel"] == 2 and agg["engine"]["overlap_scheduler"] is True, agg


def test_a_worker_without_a_model_flag_serves_dynamos_default(tmp_path):
    """`no_model_flag.yaml` of S2-04, a plausible manifest: Dynamo serves DYN_TRTLLM_MODEL or its default."""
    dgd = copy.deepcopy(DGD)
    main = dgd["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]
    main["args"] = ["--extra-engine-args", "/cfg/agg.yaml"]
    result = import_dgd([_write(tmp_path / "dgd.yaml", dgd, CONFIG_MAP)])
    assert result.spec["model"]["path"] == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    assert [w.code for w in result.warnings if w.code == "DYN971"] == ["DYN971"]
    assert round_trip_clean(result, tmp_path)
    main["env"].append({"name": "DYN_TRTLLM_MODEL", "value": "org/from-env"})
    result = import_dgd([_write(tmp_path / "dgd.yaml", dgd, CONFIG_MAP)])
    assert result.spec["model"]["path"] == "org/from-env"


def round_trip_clean(result: Any, tmp_path: Path) -> bool:
    from dyncc.tools.importer import round_trip

    unexplained = round_trip(result, tmp_path / "rt")
    assert unexplained == [], unexplained
    return True


def test_a_planner_config_that_is_not_an_object_is_not_imported(tmp_path):
    dgd = copy.deepcopy(DGD)
    planner = copy.deepcopy(dgd["spec"]["components"][0])
    planner.update(name="planner", type="planner")
    planner["podTemplate"]["spec"]["containers"][0].update(
        command=["python3", "-m", "dynamo.planner"], args=["--config", "[1]"]
    )
    dgd["spec"]["components"].append(planner)
    result = import_dgd([_write(tmp_path / "dgd.yaml", dgd, CONFIG_MAP)])
    assert "planner" not in result.spec and "DYN960" in {w.code for w in result.warnings}


# --- the gate: what import reads ---------------------------------------------------------------------


def test_import_reads_only_regular_files_and_never_blocks(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)  # 2 MB
    for path, reason in ((fifo, "a FIFO"), ("/dev/zero", "a character device"), (tmp_path, "Is a directory")):
        started = time.monotonic()
        with pytest.raises(DiagnosticError) as exc:
            import_dgd([path])
        assert time.monotonic() - started < 2
        (error,) = exc.value.diagnostics
        assert error.code == "DYN952" and reason in error.message and error.location.file == str(path), error
    with pytest.raises(DiagnosticError) as exc:
        import_dgd([big])
    assert [d.code for d in exc.value.diagnostics] == ["DYN952"] and "larger than" in exc.value.diagnostics[0].message


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (
            "data:\n  a0: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"  a{i}: &a{i} [{', '.join(['*a' if i == 1 else f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8)),
            "DYN017",
        ),
        ("[" * 20_000 + "]" * 20_000 + "\n", "DYN012"),
        ("x: !!python/object:os.system ls\n", "DYN016"),
        ("k: 1\nk: 2\n", "DYN001"),
    ],
    ids=["alias-bomb", "deep-nesting", "python-tag", "duplicate-key"],
)
def test_import_parses_with_the_spec_loaders_limits(tmp_path, text, code):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text)
    started = time.monotonic()
    with pytest.raises(DiagnosticError) as exc:
        import_dgd([manifest])
    assert time.monotonic() - started < 5
    assert exc.value.diagnostics[0].code == code, exc.value.diagnostics


# --- what import writes: data, never syntax ----------------------------------------------------------

INJECTED = "1\ncompose: {hf_cache: /, http_host: 0.0.0.0}\r\nlocal: {http_host: 0.0.0.0}\u2028k8s: {x: 1}\x85#"


@pytest.mark.parametrize("where", ["flag-value", "component-name", "file-name", "env-name"])
def test_text_from_the_manifest_never_becomes_a_key_of_the_spec(tmp_path, where):
    """S2-01: line breaks (LF, CR, and NEL/LS/PS that YAML 1.1 readers break on) in any text the import
    repeats in its header comments stay inside the comment; the file holds exactly the imported values."""
    dgd = copy.deepcopy(DGD)
    frontend = dgd["spec"]["components"][0]
    name = "dgd.yaml"
    if where == "flag-value":
        frontend["podTemplate"]["spec"]["containers"][0]["args"] += ["--x", INJECTED]
    elif where == "component-name":
        frontend["name"] = INJECTED
    elif where == "env-name":
        frontend["podTemplate"]["spec"]["containers"][0]["env"] = [{"name": INJECTED, "value": "v"}]
    else:
        name = "a" + INJECTED.replace("/", "_") + ".yaml"
    manifest = _write(tmp_path / name, dgd, CONFIG_MAP)
    result = import_dgd([manifest])
    data, _ = load_yaml_data(result.text, "imported.yaml")
    assert data == result.spec
    assert set(data) <= {"apiVersion", "name", "model", "image", "cluster", "router", "pools", "k8s"}, set(data)
    assert "0.0.0.0" not in yaml.safe_dump(data)
    assert yaml.safe_load(result.text) == result.spec  # PyYAML (YAML 1.1: NEL, LS, PS break lines) agrees
    header = [line for line in result.text.splitlines() if line.startswith("#")]
    assert any("compose: {hf_cache" in line for line in header), header  # named, escaped, in a comment


def test_comment_text_is_one_line_of_ascii():
    text = comment_text("a\nb\rc\x85d\u2028e\u2029f\x1b]0;t\x07\u202eg é")
    assert text.isascii() and "\n" not in text and "\r" not in text
    assert all(ch.isprintable() for ch in text), text


def test_import_prints_no_control_character(tmp_path):
    """S2-14: the spec printed on stdout (on a terminal) holds no ESC, BEL or bidi control from the manifest."""
    dgd = copy.deepcopy(DGD)
    dgd["spec"]["components"][0]["podTemplate"]["spec"]["containers"][0]["args"] += [
        "--x",
        "\x1b]0;PWNED\x07\x1b[2J\u202e",
    ]
    dgd["metadata"]["name"] = "llm"
    _write(tmp_path / "dgd.yaml", dgd, CONFIG_MAP)
    proc = cli("import", "dgd.yaml", cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", proc.stdout + proc.stderr), proc.stdout


def test_import_of_a_fifo_through_the_cli_ends_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo.yaml")
    proc = run_dyncc("import", "fifo.yaml", cwd=tmp_path, timeout=20)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "error DYN952" in proc.stderr, proc.stderr
