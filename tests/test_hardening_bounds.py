"""Issue 14, compiler side: bounded compile work, values that can really run, a template cache that
only trusts what its owner wrote. Each test feeds the class of input an adversarial reproducer found
(/work/shared/adversarial) and checks for a coded error, or the bounded and correct result."""

from __future__ import annotations

import json
import os
import random
import time
import tracemalloc
from pathlib import Path

import msgspec
import pytest
from conftest import assert_no_traceback, cli
from hypothesis import given, settings
from hypothesis import strategies as st

from dyncc.compiler import check_spec, compile_spec
from dyncc.compiler.graph import pools
from dyncc.compiler.placement import place_ranks
from dyncc.compiler.plan import oversized_files
from dyncc.compiler.rules import secret_shape, secret_words
from dyncc.deployment import load_spec_text
from dyncc.diagnostics import DiagnosticError


def _spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text("apiVersion: dyncc/v1\nname: adv\n" + text)
    return path


def _error_codes(path: Path) -> set[str]:
    proc = cli("validate", "--format", "json", path)
    assert_no_traceback(proc)
    diagnostics = json.loads(proc.stdout)["files"][0]["diagnostics"]
    return {d["code"] for d in diagnostics if d["severity"] == "error"}


# --- D-04 / D-21: placement cost follows workers, not ranks; first fit in linear time -----------------


def test_a_hundred_million_rank_spec_is_refused_with_bounded_memory(tmp_path):
    spec = _spec(
        tmp_path,
        "cluster: {gpus_per_node: 1024, nodes: 100000}\nmodel: {moe: false, path: m}\n"
        "pools:\n  agg: {pipeline_parallel: 4096, replicas: 6, tensor_parallel: 4096}\n",
    )
    tracemalloc.start()
    try:
        codes = _error_codes(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert codes == {"DYN406", "DYN407"}
    assert peak < 100 * 1024 * 1024  # was > 7.5 GB, then a crash


def _naive_first_fit(sizes: list[tuple[str, int, int]], gpn: int, nodes: int) -> list[tuple]:
    """The placement rule written the obvious (quadratic) way, rank by rank, as the reference."""
    free = [gpn] * nodes
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i][2])
    placed: dict[int, tuple] = {}
    for i in order:
        role, replica, size = sizes[i]
        if size > gpn:
            span = -(-size // gpn)
            start = next(n for n in range(nodes - span + 1) if all(free[m] == gpn for m in range(n, n + span)))
            ranks = [(n, g) for n in range(start, start + span) for g in range(gpn)][:size]
            for n in range(start, start + span):
                free[n] = 0
        else:
            node = next(n for n in range(nodes) if free[n] >= size)
            ranks = [(node, g) for g in range(gpn - free[node], gpn - free[node] + size)]
            free[node] -= size
        placed[i] = (role, replica, tuple(ranks))
    return [placed[i] for i in range(len(sizes))]


@pytest.mark.parametrize("seed", range(25))
def test_placement_matches_rank_by_rank_first_fit(seed):
    rng = random.Random(seed)
    gpn = rng.choice([1, 2, 3, 4, 8])
    text = f"model: {{moe: false, path: m}}\ncluster: {{gpus_per_node: {gpn}, nodes: 400}}\npools:\n"
    roles = rng.choice([["agg"], ["prefill", "decode"]])
    for role in roles:
        tp = rng.choice([t for t in (1, 2, 3, 4, 8, 16) if t <= gpn or t % gpn == 0])
        text += f"  {role}: {{replicas: {rng.randint(1, 12)}, tensor_parallel: {tp}}}\n"
    loaded = load_spec_text("apiVersion: dyncc/v1\nname: adv\n" + text, "s.yaml")
    graph, placement, diagnostics = check_spec(loaded)
    assert placement is not None, diagnostics
    sizes = [(p.role, r, p.gpus_per_worker) for p in pools(graph) for r in range(p.replicas)]
    got = [(w.role, w.replica, w.ranks) for w in placement.workers]
    assert got == _naive_first_fit(sizes, gpn, 400)
    assert placement.nodes_used == len({n for w in placement.workers for n, _ in w.ranks})
    assert placement.gpus_used == sum(size for *_, size in sizes)
    for w in placement.workers:
        assert w.nodes == tuple(sorted({n for n, _ in w.ranks}))
        assert all(w.gpus_on(n) == tuple(g for m, g in w.ranks if m == n) for n in w.nodes)


def test_placement_on_partly_free_nodes_places_every_worker_once():
    # 3-GPU nodes, 2-GPU workers: every node keeps a GPU free (the case that was quadratic: 18 s at 32,000
    # workers). Its speed is measured in benchmarks/placement.py (doubling ratio in benchmarks/results.md);
    # here only what it computes, at a size where the quadratic path would not finish in the test's time.
    workers = 32000
    text = (
        f"model: {{moe: false, path: m}}\ncluster: {{gpus_per_node: 3, nodes: {workers}}}\n"
        f"local: {{http_port: 40000, system_port_base: 1}}\nslurm: {{http_port: 40001}}\n"
        f"pools:\n  agg: {{replicas: {workers}, tensor_parallel: 2}}\n"
    )
    graph, placement, _ = check_spec(load_spec_text("apiVersion: dyncc/v1\nname: adv\n" + text, "s.yaml"))
    assert placement is not None and placement.nodes_used == workers
    again = place_ranks(pools(graph), 3, workers)
    assert [w.nodes for w in again.workers] == [(n,) for n in range(workers)]


def test_explain_prints_one_row_per_rank_of_a_spanning_worker():
    proc = cli("explain", "examples/wide_ep.yaml")
    assert proc.returncode == 0, proc.stderr
    compilation = compile_spec(load_spec_text(Path("examples/wide_ep.yaml").read_text(), "w.yaml"))
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert len(rows) == compilation.plan.total_gpus


# --- D-05: engine.extra values dyncc reads are type-checked --------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        "{kv_cache_config: {tokens_per_block: [1]}}",
        "{kv_cache_config: null}",
        "{kv_cache_config: {tokens_per_block: abc}}",
        "{kv_cache_config: {tokens_per_block: true}}",
        "{kv_cache_config: 7}",
        "{cuda_graph_config: {batch_sizes: [1, a]}}",
        "{cuda_graph_config: {batch_sizes: 5}}",
        "{cuda_graph_config: {max_batch_size: x}}",
        "{cuda_graph_config: [1]}",
        "{max_batch_size: [16]}",
        "{max_num_tokens: null}",
        "{moe_config: {load_balancer: {num_slots: x}}}",
        "{cache_transceiver_config: {backend: 5}}",
        "{speculative_config: 3}",
    ],
)
@pytest.mark.parametrize("engine", [None, "mocker"])
def test_wrong_types_in_engine_extra_are_coded_errors(tmp_path, extra, engine):
    spec = _spec(
        tmp_path,
        f"model: {{path: Qwen/Qwen3-0.6B, moe: false}}\nrouter: {{mode: kv}}\npools:\n  agg:\n    engine:\n"
        f"      extra: {extra}\n",
    )
    assert _error_codes(spec) == {"DYN114"}
    proc = cli("build", spec, "-o", tmp_path / "out", *(["--engine", engine] if engine else []))
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "DYN114" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_well_typed_engine_extra_still_builds(tmp_path):
    spec = _spec(
        tmp_path,
        "model: {path: Qwen/Qwen3-0.6B, moe: false}\npools:\n  agg:\n    engine:\n      extra:\n"
        "        kv_cache_config: {tokens_per_block: 64}\n        cuda_graph_config: {batch_sizes: [1, 2, 4]}\n",
    )
    proc = cli("build", spec, "-t", "local", "-o", tmp_path / "out", "--engine", "mocker")
    assert proc.returncode == 0, proc.stderr
    script = (tmp_path / "out" / "local" / "launch.sh").read_text()
    assert "--block-size 64" in script and "None" not in script


# --- D-03 / D-22: sweeps --------------------------------------------------------------------------------


def _sweep_spec(tmp_path: Path, sweep: str, name: str = "adv") -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        f"apiVersion: dyncc/v1\nname: {name}\nmodel: {{path: m, moe: false}}\npools: {{agg: {{}}}}\n{sweep}"
    )
    return path


def test_a_sweep_of_billions_of_points_is_counted_not_expanded(tmp_path):
    values = "[" + ", ".join(str(i) for i in range(64)) + "]"
    keys = "".join(f"  pools.agg.engine.extra.model_kwargs.k_{c}: {values}\n" for c in "abcdef")
    spec = _sweep_spec(tmp_path, "sweep:\n" + keys)
    start = time.monotonic()
    assert _error_codes(spec) == {"DYN801"}
    proc = cli("sweep", spec, "-o", tmp_path / "out")
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "DYN801" in proc.stderr and "68719476736 points" in proc.stderr
    assert time.monotonic() - start < 30
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("sweep", "code"),
    [
        ("sweep: {name: [a, b]}\n", "DYN802"),
        ("sweep: {sweep: [1]}\n", "DYN802"),
        ("sweep: {pools.agg: [{replicas: 1}], pools.agg.replicas: [1, 2]}\n", "DYN803"),
    ],
)
def test_sweep_keys_dyncc_sets_or_that_overlap_are_refused(tmp_path, sweep, code):
    spec = _sweep_spec(tmp_path, sweep)
    assert _error_codes(spec) == {code}
    proc = cli("sweep", spec, "-o", tmp_path / "out")
    assert proc.returncode == 1 and code in proc.stderr
    assert_no_traceback(proc)


def test_points_of_a_long_named_sweep_get_distinct_names(tmp_path):
    spec = _sweep_spec(tmp_path, "sweep: {pools.agg.replicas: [1, 2, 3]}\n", name="a" * 63)
    proc = cli("sweep", spec, "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    names = [p["name"] for p in json.loads((tmp_path / "out" / "index.json").read_text())]
    assert len(set(names)) == 3 and all(len(n) <= 63 for n in names)


def test_a_sweep_whose_point_has_a_wrong_extra_type_reports_the_point(tmp_path):
    spec = _sweep_spec(
        tmp_path, "sweep: {pools.agg.engine.extra.cuda_graph_config: [{batch_sizes: 5}, {batch_sizes: [1]}]}\n"
    )
    proc = cli("sweep", spec, "-o", tmp_path / "out")
    assert_no_traceback(proc)
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [p["codes"] for p in index] == [["DYN114"], []]


# --- D-19 / D-20: values that validate must be able to run; secrets by name and by shape ---------------


@pytest.mark.parametrize(
    ("model", "code"),
    [
        ("{path: m, moe: false, served_name: --help}", "DYN115"),
        ("{path: -m, moe: false}", "DYN115"),
        ("{path: m, moe: false, served_name: " + "n" * 140_000 + "}", "DYN116"),
        ("{path: ./no/such/dir, moe: false}", "DYN118"),
        ("{path: ~/models/x, moe: false}", "DYN118"),
    ],
)
def test_model_names_that_cannot_be_passed_to_a_worker(tmp_path, model, code):
    assert _error_codes(_spec(tmp_path, f"model: {model}\npools: {{agg: {{}}}}\n")) == {code}


@pytest.mark.parametrize("value", ['"a\\0b"', '"\\e[31mred"', '"a\\rb"', '"\\x7f"', '"\\x9b2J"'])
def test_control_characters_in_env_values_are_refused(tmp_path, value):
    spec = _spec(tmp_path, f"model: {{path: m, moe: false}}\npools:\n  agg:\n    env:\n      FOO: {value}\n")
    assert _error_codes(spec) == {"DYN117"}


def test_tab_and_newline_in_env_values_are_fine(tmp_path):
    spec = _spec(tmp_path, 'model: {path: m, moe: false}\npools:\n  agg:\n    env:\n      FOO: "a\\tb\\nc"\n')
    assert _error_codes(spec) == set()


def test_env_over_what_exec_accepts_is_refused(tmp_path):
    # One 32 KB value, 34 names (through an alias: the spec file itself stays small).
    env = f"      V0: &v {'x' * 32000}\n" + "".join(f"      V{i}: *v\n" for i in range(1, 34))
    spec = _spec(tmp_path, f"model: {{path: m, moe: false}}\npools:\n  agg:\n    env:\n{env}")
    assert _error_codes(spec) == {"DYN116"}


@pytest.mark.parametrize(
    "name",
    ["AWS_SECRET_ACCESS_KEY_ID", "DB_PASS", "GITHUB_PAT", "HF_TOKEN_VALUE", "OPENAI_KEY", "dbPassword", "MyApiKey"],
)
def test_secret_words_anywhere_in_an_env_name(name):
    assert secret_words(name)


@pytest.mark.parametrize(
    "name",
    ["TRTLLM_ENABLE_PDL", "NCCL_MNNVL_ENABLE", "HF_HOME", "KEYBOARD_LAYOUT", "BYPASS_CACHE", "TOKENIZERS_PARALLELISM"],
)
def test_ordinary_env_names_are_not_secrets(name):
    assert not secret_words(name)


@pytest.mark.parametrize(
    "value",
    [
        "hf_" + "aB3" * 10,
        "sk-" + "x1Y" * 10,
        "ghp_" + "Ab1" * 10,
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc",
        "https://user:pa55@example.com/x",
        "nvapi-" + "Qx7-Lm2_" * 6,
        "-----BEGIN OPENSSH PRIVATE KEY-----",
    ],
)
def test_secret_shaped_values_are_caught_under_any_name(tmp_path, value):
    assert secret_shape(value)
    spec = _spec(tmp_path, f"model: {{path: m, moe: false}}\npools:\n  agg:\n    env:\n      SETTING: '{value}'\n")
    assert _error_codes(spec) == {"DYN113"}


REAL_MODEL_IDS = [
    "nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8",
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8",
    "nvidia/DeepSeek-R1-0528-FP4-v2",
    "moonshotai/Kimi-K2-Instruct-0905",
    "/root/.cache/huggingface/hub/models--nvidia--DeepSeek-R1-FP4/snapshots/" + "3f1c9a7e0b" * 4,
    "sha256:" + "9b2e4f6a8c" * 6 + "1d2e3f4a",
]


@pytest.mark.parametrize(
    "value",
    ["1", "/models/cache", "Qwen/Qwen3-0.6B", "https://example.com/a/b", "x" * 64, "Zx8Qm2Lp9Tr4Vb7Nc1Kd6Hs3Jf5Gw0Ye"]
    + REAL_MODEL_IDS,
)
def test_ordinary_values_are_not_secrets(value):
    # Randomness alone is no secret: ids, revisions, digests and cache paths look random too.
    assert secret_shape(value) is None


@pytest.mark.parametrize("model_id", REAL_MODEL_IDS[:5])
def test_real_model_ids_and_cache_paths_validate(tmp_path, model_id):
    spec = _spec(
        tmp_path,
        f"model: {{path: '{model_id}', served_name: '{model_id}', moe: false}}\n"
        f"pools:\n  agg:\n    env:\n      MODEL_PATH: '{model_id}'\n      SETTING: '{model_id}'\n",
    )
    assert _error_codes(spec) == set()


@given(
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}/[A-Za-z0-9][A-Za-z0-9._-]{0,60}", fullmatch=True),
)
@settings(max_examples=300, deadline=None)
def test_any_org_name_model_id_is_not_a_secret(model_id):
    assert secret_shape(model_id) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("MAX_TOKENS", "8192"), ("HF_TOKEN_PATH", "/run/secrets/hf"), ("API_KEY", "${API_KEY}"), ("SECRET_NAME", "hf")],
)
def test_secret_names_over_values_that_cannot_be_secrets_are_fine(tmp_path, name, value):
    spec = _spec(tmp_path, f"model: {{path: m, moe: false}}\npools:\n  agg:\n    env:\n      {name}: '{value}'\n")
    assert _error_codes(spec) == set()


# --- D-12: output size ----------------------------------------------------------------------------------


def test_env_multiplied_by_replicas_is_refused_before_rendering_the_sbatch(tmp_path):
    env = "".join(f"      V{i}: &v{i} {'x' * 30000}\n" for i in range(7))
    spec = _spec(
        tmp_path,
        "cluster: {nodes: 250}\nlocal: {http_port: 40000, system_port_base: 1000}\nmodel: {moe: false, path: m}\n"
        f"pools:\n  agg:\n    replicas: 2000\n    env:\n{env}",
    )
    tracemalloc.start()
    try:
        proc = cli("build", spec, "-t", "slurm", "-o", tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "DYN512" in proc.stderr
    assert peak < 200 * 1024 * 1024
    assert not (tmp_path / "out").exists()


def test_k8s_configmap_over_one_mib_is_refused():
    from dyncc.targets import k8s

    compilation = compile_spec(load_spec_text(Path("examples/disagg.yaml").read_text(), "d.yaml"))
    plan = compilation.plan
    big = "# " + "x" * 600_000 + "\n"
    plan = msgspec.structs.replace(plan, pools=tuple(msgspec.structs.replace(p, engine_yaml=big) for p in plan.pools))
    with pytest.raises(DiagnosticError) as exc:
        k8s.render(plan, compilation.loaded.spec.k8s)
    assert [d.code for d in exc.value.diagnostics] == ["DYN511"]


def test_any_generated_file_over_the_limit_is_a_coded_error():
    files = {"small": "x" * 100, "large": "y" * 2000}
    assert [d.code for d in oversized_files("local", files, limit=1000)] == ["DYN510"]
    assert "large" in oversized_files("local", files, limit=1000)[0].message


# --- D-13: relative model paths -------------------------------------------------------------------------


def test_relative_model_path_is_written_absolute(tmp_path):
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    (tmp_path / "models" / "tiny" / "config.json").write_text('{"num_local_experts": 8}')
    spec = _spec(tmp_path, "model: {path: models/tiny}\npools: {agg: {}}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli("build", spec, "-t", "local", "-t", "slurm", "-o", tmp_path / "out", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    absolute = str((tmp_path / "models" / "tiny").resolve())
    local = (tmp_path / "out" / "local/launch.sh").read_text()
    assert f"--model {absolute}" in local and "--model models/tiny" not in local
    # Slurm mounts the checkpoint read-only into the container and serves it from there.
    job = (tmp_path / "out" / "slurm/job.sbatch").read_text()
    assert f",{absolute}:/model:ro" in job and "--model /model " in job and ",models/tiny:" not in job


# --- D-10: the template cache trusts only what its owner wrote -------------------------------------------


def _poison(cache_dir: Path, marker: Path) -> None:
    """What an attacker with write access to the cache does: a compiled template that also runs code."""
    from dyncc.targets import shell

    env = shell.template_environment("dyncc.targets.local")
    source, filename, _ = shell._template_source("dyncc.targets.local", "launch.sh.j2")
    evil = "{% set _ = cycler.__init__.__globals__.os.system('touch " + str(marker) + "') %}" + source
    cache = env.bytecode_cache
    assert cache is not None and Path(cache.directory).parent == cache_dir
    bucket = cache.get_bucket(env, "launch.sh.j2", filename, source)
    bucket.code = env.compile(evil, "launch.sh.j2", filename)
    cache.set_bucket(bucket)


def _build_with_cache(cache_dir: Path, tmp_path: Path, tamper) -> bool:
    """Poison the cache, let `tamper` change it, build: did the poisoned code run?"""
    from dyncc.targets import shell

    marker = tmp_path / "CACHE_PWNED"
    old = os.environ.get("DYNCC_CACHE_DIR")
    os.environ["DYNCC_CACHE_DIR"] = str(cache_dir)
    try:
        shell.template_environment.cache_clear()
        _poison(cache_dir, marker)
        tamper(next(cache_dir.iterdir()))
        shell.template_environment.cache_clear()
        proc = cli("build", "examples/agg.yaml", "-t", "local", "-o", tmp_path / "out")
        assert proc.returncode == 0, proc.stderr
    finally:
        if old is None:
            del os.environ["DYNCC_CACHE_DIR"]
        else:
            os.environ["DYNCC_CACHE_DIR"] = old
        shell.template_environment.cache_clear()
    return marker.exists()


def test_a_private_cache_is_used(tmp_path):
    # The control: the owner's own 0700 cache is loaded (so the tests below can fail).
    assert _build_with_cache(tmp_path / "cache", tmp_path, lambda directory: None)


def test_a_cache_directory_others_can_write_is_ignored(tmp_path):
    assert not _build_with_cache(tmp_path / "cache", tmp_path, lambda directory: directory.chmod(0o777))


def test_a_cache_base_others_can_write_is_ignored(tmp_path):
    assert not _build_with_cache(tmp_path / "cache", tmp_path, lambda directory: directory.parent.chmod(0o777))


def test_a_cache_file_others_can_write_is_ignored(tmp_path):
    def loosen(directory: Path) -> None:
        for entry in directory.iterdir():
            entry.chmod(0o666)

    assert not _build_with_cache(tmp_path / "cache", tmp_path, loosen)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_cache_file_owned_by_another_user_is_ignored(tmp_path):
    def give_away(directory: Path) -> None:
        for entry in directory.iterdir():
            os.chown(entry, 65534, 65534)

    assert not _build_with_cache(tmp_path / "cache", tmp_path, give_away)


def test_a_symlinked_cache_file_is_ignored(tmp_path):
    def swap_for_symlink(directory: Path) -> None:
        for entry in directory.iterdir():
            moved = tmp_path / entry.name
            entry.rename(moved)
            entry.symlink_to(moved)

    assert not _build_with_cache(tmp_path / "cache", tmp_path, swap_for_symlink)
