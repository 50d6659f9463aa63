"""Each process gets each env variable once, on every target: where the spec gives a variable dyncc sets too
(dyncc.targets.env_merge), the same value is written once and silently; another value is DYN525 where
something dyncc writes relies on its own (the k8s model cache's HF_HOME, a worker's system port) and the
spec's value with the warning DYN526 where nothing does; a k8s patch adding a second entry is DYN527.
Server-side apply refuses a container env with a duplicate name, and client-side apply keeps the last."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from conftest import REFERENCE, ROOT, VALID_EXAMPLES

from dyncc.api import render_targets, validate_text
from dyncc.compiler import compile_spec
from dyncc.deployment import load_spec_text
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.targets.compose import env as compose_env
from dyncc.tools.golden import render_example_outputs
from dyncc.tools.importer import import_dgd, round_trip

MULTINODE = REFERENCE / "dynamo-examples/deploy/disagg-multinode.yaml"
ENV_WORDS = re.compile(r"(?:^|\s)env\s+[A-Za-z_][A-Za-z0-9_]*=")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


# --- finding a name written twice in any generated file --------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with a key twice (compose's `environment:` is a mapping)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        twice = {k for k in keys if keys.count(k) > 1}
        assert not twice, f"a mapping names {sorted(twice)} twice (line {node.start_mark.line + 1})"
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


def _twice(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def _yaml_env_duplicates(text: str) -> list[str]:
    """Every `env`/`envs` list (k8s containers, v1alpha1 services) and list-form `environment` naming a
    variable twice; a mapping with a key twice fails in the loader."""
    found = []
    stack: list[object] = list(yaml.load_all(text, Loader=_StrictLoader))
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("env", "envs") and isinstance(value, list):
                    found += _twice([str(e.get("name")) for e in value if isinstance(e, dict)])
                elif key == "environment" and isinstance(value, list):
                    found += _twice([str(e).split("=", 1)[0] for e in value])
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _shell_env_duplicates(text: str) -> list[str]:
    """Every `env NAME=value ... command` a script starts a process under, naming a variable twice."""
    found = []
    for line in text.splitlines():
        if not ENV_WORDS.search(line):
            continue
        words = shlex.split(line, comments=False)
        for start in (i for i, word in enumerate(words) if word == "env"):
            names = []
            for word in words[start + 1 :]:
                if not ASSIGNMENT.match(word):
                    break
                names.append(word.split("=", 1)[0])
            found += _twice(names)
    return found


def env_duplicates(files: dict[str, object]) -> dict[str, list[str]]:
    out = {}
    for name, text in files.items():
        if not isinstance(text, str):
            continue
        if name.endswith((".yaml", ".yml")):
            twice = _yaml_env_duplicates(text)
        elif name.endswith((".sh", ".sbatch")):
            twice = _shell_env_duplicates(text)
        else:
            continue
        if twice:
            out[name] = twice
    return out


def test_the_duplicate_finder_finds_a_name_twice_in_each_kind_of_file():
    k8s = "spec:\n  containers:\n  - env:\n    - {name: HF_HOME, value: /a}\n    - {name: HF_HOME, value: /a}\n"
    alpha = "spec:\n  services:\n    W:\n      envs:\n      - {name: A, value: '1'}\n      - {name: A, value: '2'}\n"
    script = 'srun step.sh env DYN_SYSTEM_PORT=8081 A=1 DYN_SYSTEM_PORT=9 "$PYTHON" -m dynamo.trtllm --x env\n'
    assert env_duplicates({"dgd.yaml": k8s, "old.yaml": alpha, "job.sbatch": script}) == {
        "dgd.yaml": ["HF_HOME"],
        "old.yaml": ["A"],
        "job.sbatch": ["DYN_SYSTEM_PORT"],
    }
    with pytest.raises(AssertionError, match="HF_HOME"):
        env_duplicates(
            {"docker-compose.yaml": "services:\n  w:\n    environment:\n      HF_HOME: a\n      HF_HOME: b\n"}
        )
    assert env_duplicates({"launch.sh": "env A=1 B=2 python -m x\necho env A=1 A=1\n"}) == {"launch.sh": ["A"]}


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_no_generated_file_of_any_example_names_an_env_variable_twice(example):
    files = render_example_outputs(example)  # every target, the 1.x and 0.x profiles
    assert any(name.endswith("dynamographdeployment.yaml") for name in files)
    assert env_duplicates(files) == {}


# --- building specs in memory --------------------------------------------------------------------

BASE = """\
apiVersion: dyncc/v1
name: env-once
model:
  path: Qwen/Qwen3-0.6B
  moe: false
"""


def _build(text: str, target: str) -> tuple[dict[str, object], list[Diagnostic]]:
    rendered, notes = render_targets(compile_spec(load_spec_text(text)), [target])
    return rendered[target], notes


def _errors(text: str, target: str) -> list[Diagnostic]:
    with pytest.raises(DiagnosticError) as raised:
        _build(text, target)
    return list(raised.value.diagnostics)


def _worker_env(files: dict[str, object], component: str = "worker") -> list[dict]:
    dgd = yaml.safe_load(str(files["dynamographdeployment.yaml"]))
    if "services" in dgd["spec"]:
        (found,) = [s for name, s in dgd["spec"]["services"].items() if name.endswith(component)]  # TRTLLMWorker
        return found["envs"]
    (found,) = [c for c in dgd["spec"]["components"] if c["name"] == component]
    return found["podTemplate"]["spec"]["containers"][0]["env"]


def _codes(notes: list[Diagnostic]) -> set[str]:
    return {d.code for d in notes}


def _cache(download: bool) -> str:
    return f"k8s:\n  model_cache:\n    pvc: models\n    mount_path: /models\n    download: {str(download).lower()}\n"


# --- k8s -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1beta1", "v1alpha1"])
def test_k8s_a_pool_env_equal_to_the_model_caches_hf_home_is_written_once_without_a_word(api):
    spec = BASE + "pools:\n  agg:\n    env:\n      HF_HOME: /models\n      A: '1'\n" + _cache(False)
    spec += f"  api_version: {api}\n"
    files, notes = _build(spec, "k8s")
    env = _worker_env(files, "Worker" if api == "v1alpha1" else "worker")
    assert [e["name"] for e in env].count("HF_HOME") == 1 and {"name": "HF_HOME", "value": "/models"} in env
    assert not _codes(notes) & {"DYN525", "DYN526"}


def test_k8s_another_hf_home_where_workers_fill_the_cache_themselves_is_an_error():
    spec = BASE + "pools:\n  agg:\n    env:\n      HF_HOME: /root/.cache/huggingface\n" + _cache(False)
    (error,) = _errors(spec, "k8s")
    assert error.code == "DYN525" and error.path == ("pools", "agg", "env", "HF_HOME")
    assert "k8s.model_cache.mount_path" in (error.hint or "") and "/models" in error.message


def test_k8s_an_hf_home_inside_the_cache_or_beside_a_downloaded_model_is_the_specs_with_a_warning():
    inside = BASE + "pools:\n  agg:\n    env:\n      HF_HOME: /models/hf/\n" + _cache(False)
    files, notes = _build(inside, "k8s")
    assert [e for e in _worker_env(files) if e["name"] == "HF_HOME"] == [{"name": "HF_HOME", "value": "/models/hf/"}]
    assert [d.path for d in notes if d.code == "DYN526"] == [("pools", "agg", "env", "HF_HOME")]
    # The download Job fills the cache and the workers serve its directory by path: HF_HOME is not relied on.
    beside = BASE + "pools:\n  agg:\n    env:\n      HF_HOME: /tmp/hf\n" + _cache(True)
    files, notes = _build(beside, "k8s")
    assert [e for e in _worker_env(files) if e["name"] == "HF_HOME"] == [{"name": "HF_HOME", "value": "/tmp/hf"}]
    assert "DYN526" in _codes(notes)
    # /models-old is not inside /models
    assert _errors(BASE + "pools:\n  agg:\n    env:\n      HF_HOME: /models-old\n" + _cache(False), "k8s")


def test_k8s_env_settings_are_judged_where_they_are_set_and_reported_once():
    own = BASE + "pools:\n  agg:\n    env:\n      HF_HOME: /x\n" + _cache(False)
    own += "  pools:\n    agg:\n      env:\n        HF_HOME: /models\n"  # the k8s setting wins over the pool's
    files, notes = _build(own, "k8s")
    assert [e for e in _worker_env(files) if e["name"] == "HF_HOME"] == [{"name": "HF_HOME", "value": "/models"}]
    assert not _codes(notes) & {"DYN525", "DYN526"}
    shared = (
        BASE + "pools:\n  prefill: {}\n  decode: {}\n" + _cache(False) + "  defaults:\n    env:\n      HF_HOME: /x\n"
    )
    errors = _errors(shared, "k8s")
    assert [(d.code, d.path) for d in errors] == [("DYN525", ("k8s", "defaults", "env", "HF_HOME"))]
    source = BASE + "pools:\n  agg: {}\n" + _cache(False)
    source += "  pools:\n    agg:\n      env:\n        HF_HOME: {field_ref: metadata.name}\n"
    (error,) = _errors(source, "k8s")
    assert error.path == ("k8s", "pools", "agg", "env", "HF_HOME") and "valueFrom" in error.message


MULTINODE_SPEC = BASE + "cluster:\n  gpus_per_node: 4\n  nodes: 2\npools:\n  agg:\n    tensor_parallel: 8\n"


def test_k8s_the_multinode_mpi_switches_are_the_specs_when_it_says_otherwise():
    same, notes = _build(MULTINODE_SPEC + "    env:\n      OMPI_ALLOW_RUN_AS_ROOT: '1'\n", "k8s")
    names = [e["name"] for e in _worker_env(same)]
    assert names.count("OMPI_ALLOW_RUN_AS_ROOT") == 1 and "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM" in names
    assert not _codes(notes) & {"DYN525", "DYN526"}
    other, notes = _build(MULTINODE_SPEC + "    env:\n      OMPI_ALLOW_RUN_AS_ROOT: '0'\n", "k8s")
    mpi = [e for e in _worker_env(other) if e["name"] == "OMPI_ALLOW_RUN_AS_ROOT"]
    assert mpi == [{"name": "OMPI_ALLOW_RUN_AS_ROOT", "value": "0"}]
    assert [(d.code, d.severity) for d in notes if d.code.startswith("DYN52")] == [("DYN526", "warning")]


def test_k8s_a_patch_adding_a_second_entry_is_refused_and_one_replacing_it_is_not():
    spec = BASE + "pools:\n  agg:\n    env:\n      NCCL_DEBUG: WARN\nk8s:\n  pools:\n    agg:\n      patches:\n"
    add = "        - {op: add, path: /podTemplate/spec/containers/0/env/-, value: {name: NCCL_DEBUG, value: INFO}}\n"
    (error,) = _errors(spec + add, "k8s")
    assert error.code == "DYN527" and error.path == ("k8s", "pools", "agg", "patches") and "NCCL_DEBUG" in error.message
    replace = "        - {op: replace, path: /podTemplate/spec/containers/0/env/0/value, value: INFO}\n"
    files, _ = _build(spec + replace, "k8s")
    assert _worker_env(files) == [{"name": "NCCL_DEBUG", "value": "INFO"}]


# --- compose and slurm ---------------------------------------------------------------------------


def test_compose_a_system_port_other_than_the_healthchecks_is_an_error_and_the_same_one_written_once():
    errors = _errors(BASE + "pools:\n  agg:\n    env:\n      DYN_SYSTEM_PORT: '9999'\n", "compose")
    assert [(d.code, d.path) for d in errors] == [("DYN525", ("pools", "agg", "env", "DYN_SYSTEM_PORT"))]
    assert "compose.system_port" in (errors[0].hint or "")
    files, _ = _build(BASE + "pools:\n  agg:\n    env:\n      DYN_SYSTEM_PORT: '8081'\n", "compose")
    services = yaml.load(str(files["docker-compose.yaml"]), Loader=_StrictLoader)["services"]
    (worker,) = [s for name, s in services.items() if name.startswith("agg")]
    assert worker["environment"]["DYN_SYSTEM_PORT"] == "8081"


def test_compose_a_token_the_spec_gives_replaces_the_pass_through_with_a_warning():
    spec = BASE + "pools:\n  agg:\n    env:\n      HF_TOKEN: $TOKEN_FROM_A_FILE\n"
    compilation = compile_spec(load_spec_text(spec))
    settings = compilation.loaded.spec.compose
    (problem,) = compose_env.env_problems(compilation.plan, settings)
    assert problem.code == "DYN526" and problem.path == ("pools", "agg", "env", "HF_TOKEN")
    files, _ = _build(spec, "compose")
    services = yaml.safe_load(str(files["docker-compose.yaml"]))["services"]
    (worker,) = [s for name, s in services.items() if name.startswith("agg")]
    assert worker["environment"]["HF_TOKEN"] == "$$TOKEN_FROM_A_FILE"  # compose reads it literally
    # and `validate -t compose` says so: the target's check reports it, not only its renderer.
    checked = validate_text(spec, "s.yaml", ROOT, ["compose"])
    assert [(d.code, d.severity) for d in checked.diagnostics if d.code.startswith("DYN52")] == [("DYN526", "warning")]


def test_slurm_a_system_port_other_than_the_one_readiness_polls_is_an_error_and_the_same_one_written_once():
    spec = BASE + "pools:\n  agg:\n    env:\n      DYN_SYSTEM_PORT: '{}'\n"
    errors = _errors(spec.format(9999), "slurm")
    assert [(d.code, d.path) for d in errors] == [("DYN525", ("pools", "agg", "env", "DYN_SYSTEM_PORT"))]
    assert "slurm.system_port_base" in (errors[0].hint or "")
    files, _ = _build(spec.format(8081), "slurm")  # the one worker's port: slurm.system_port_base
    assert env_duplicates(files) == {}
    assert str(files["job.sbatch"]).count("DYN_SYSTEM_PORT=8081") == 1


@pytest.mark.parametrize(
    ("name", "value", "instead"),
    [
        ("DYN_DISCOVERY_BACKEND", "etcd", None),  # the job runs no etcd: the worker would find no one
        ("DYN_FILE_KV", "/tmp/elsewhere", None),
        ("HF_HOME", "/scratch/hf", "slurm.model_cache_dir"),  # the download step put the model elsewhere
    ],
)
def test_slurm_a_pool_env_value_against_what_the_job_exports_is_an_error(name, value, instead):
    """The job script exports discovery and the model cache for every step; a pool env overriding one in its
    workers alone was written without a word."""
    spec = BASE + f"pools:\n  agg:\n    env:\n      {name}: {value}\n"
    errors = _errors(spec, "slurm")
    assert [(d.code, d.path) for d in errors] == [("DYN525", ("pools", "agg", "env", name))]
    assert instead is None or instead in (errors[0].hint or "")
    checked = validate_text(spec, "s.yaml", ROOT, ["slurm"])
    assert [d.code for d in checked.diagnostics if d.is_error] == ["DYN525"]


def test_slurm_a_pool_env_value_the_job_already_exports_is_written_once():
    files, notes = _build(BASE + "pools:\n  agg:\n    env:\n      DYN_DISCOVERY_BACKEND: file\n", "slurm")
    assert not [d for d in notes if d.code.startswith("DYN52")]
    assert str(files["job.sbatch"]).count("DYN_DISCOVERY_BACKEND=file") == 1  # the job's export alone


# --- dyncc import of Dynamo's multi-node example, and back -----------------------------------------


@pytest.mark.reference("dynamo-examples/deploy")
def test_disagg_multinode_imports_without_the_caches_hf_home_and_builds_each_variable_once(tmp_path):
    result = import_dgd([MULTINODE])
    assert result.spec["k8s"]["model_cache"]["mount_path"] == "/models"
    for role in ("prefill", "decode"):
        assert "HF_HOME" not in result.spec["pools"][role]["env"]  # k8s.model_cache sets it
    assert round_trip(result, tmp_path) == []
    files = {p.name: p.read_text() for p in (tmp_path / "build" / "k8s").glob("*.yaml")}  # round_trip's build
    assert env_duplicates(files) == {}
    for role in ("prefill", "decode"):
        env = _worker_env(files, role)
        assert {"name": "HF_HOME", "value": "/models"} in env
        assert [e["name"] for e in env].count("OMPI_ALLOW_RUN_AS_ROOT") == 1
    # A spec imported before the importer left HF_HOME out, or written by hand the same way: the same DGD.
    with_hf_home = result.text.replace(
        "      OMPI_ALLOW_RUN_AS_ROOT: '1'\n", "      OMPI_ALLOW_RUN_AS_ROOT: '1'\n      HF_HOME: /models\n"
    )
    assert with_hf_home.count("HF_HOME: /models") == 2
    rebuilt, notes = _build(with_hf_home, "k8s")
    assert rebuilt["dynamographdeployment.yaml"] == files["dynamographdeployment.yaml"]
    assert not _codes(notes) & {"DYN525", "DYN526"}
