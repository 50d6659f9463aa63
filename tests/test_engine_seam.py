"""The engine seam (issue 30): what is an engine's own lives in its package under dyncc/engines.

Outside dyncc/engines/trtllm/, no module names TensorRT-LLM in code but its registration line and the spec
format's names for it (the allow-list below); documentation may (comments, docstrings, description=/help=
texts); targets wrap the plan's worker command line and never choose the worker program; the registry and the
spec agree on the engines there are; engines import no compiler or target module.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import typing

import pytest
from command_lines import plan_worker_args
from conftest import EXAMPLES, ROOT

from dyncc.api import with_engine
from dyncc.compiler import compile_spec
from dyncc.deployment import load_spec
from dyncc.engines import REGISTERED, configuring, engine, engine_names, engines
from dyncc.spec.model import WorkerRuntime

DYNCC = ROOT / "dyncc"
NAMES = re.compile(r"tensorrt|trtllm|trt-llm", re.IGNORECASE)
ENGINE_PACKAGE = "dyncc/engines/trtllm/"

# Where a module outside the engine's package may name it in code (a name, or a string that is not
# documentation), exactly this many times, and why. Documentation may name it anywhere: comments, docstrings
# and the `description=`/`help=` texts the schema, the spec reference and `--help` are generated from.
ALLOWED: dict[str, tuple[int, str]] = {
    "dyncc/engines/__init__.py": (1, "the engine's registration line"),
    "dyncc/spec/model.py": (
        3,
        "the spec format's names for the engine, a contract (CHANGELOG): `worker_runtime: trtllm` among the "
        "runtimes the spec accepts and its default, and `dynamo.trtllm`, the engine version the spec pins",
    ),
}
DOC_KEYWORDS = ("description", "help")

Span = tuple[tuple[int, int], tuple[int, int]]


def _doc_spans(tree: ast.AST) -> list[Span]:
    """Where each documentation string is: docstrings, and the texts of description=/help= arguments."""
    texts: list[ast.expr] = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                texts.append(body[0].value)
        if isinstance(node, ast.keyword) and node.arg in DOC_KEYWORDS:
            texts.append(node.value)
    return [((t.lineno, t.col_offset), (t.end_lineno or t.lineno, t.end_col_offset or 0)) for t in texts]


def _code_mentions(text: str) -> list[tuple[int, str]]:
    """(line, token) of each mention of the engine in code: a name, or a string that is not documentation."""
    spans = _doc_spans(ast.parse(text))
    found = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT or not NAMES.search(token.string):
            continue
        if token.type == tokenize.STRING and any(start <= token.start < end for start, end in spans):
            continue
        found.append((token.start[0], token.string))
    return found


def _mentions(root=ROOT) -> dict[str, list[str]]:
    """Allow-list key (file) -> the code mentions of the engine outside its package."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / "dyncc").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(ENGINE_PACKAGE):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, _ in _code_mentions(path.read_text(encoding="utf-8")):
            found.setdefault(relative, []).append(f"{relative}:{number}: {lines[number - 1].strip()}")
    return found


def test_no_module_outside_the_engine_names_tensorrt_llm_but_the_allowed_ones():
    found = _mentions()
    unexpected = {key: lines for key, lines in found.items() if key not in ALLOWED}
    assert not unexpected, "name the engine through dyncc.engines (engine.label, plan.engine), or say why here"
    over = {key: lines for key, lines in found.items() if key in ALLOWED and len(lines) > ALLOWED[key][0]}
    assert not over, f"more mentions than the allow-list gives a reason for: {over}"


def test_the_allow_list_is_no_longer_than_needed():
    """Each entry still has its mentions (a stale entry would let new ones in unseen)."""
    found = _mentions()
    assert {key: len(found.get(key, [])) for key in ALLOWED} == {key: n for key, (n, _) in ALLOWED.items()}
    (registration,) = found["dyncc/engines/__init__.py"]
    assert registration.endswith('"dyncc.engines.trtllm",')


def test_the_check_can_fail(tmp_path):
    """A module naming the engine in code outside the allow-list is found, in a name or in a message; its
    documentation and the engine's own package are not."""
    (tmp_path / "dyncc" / "targets").mkdir(parents=True)
    (tmp_path / "dyncc" / "targets" / "probe.py").write_text('MODULE = "dynamo.trtllm"\n', encoding="utf-8")
    (tmp_path / "dyncc" / "targets" / "named.py").write_text("import trtllm_thing\n", encoding="utf-8")
    (tmp_path / "dyncc" / "targets" / "said.py").write_text(
        '"""TensorRT-LLM, in a docstring."""\n# TRT-LLM in a comment\nx = f(description="for TRT-LLM")\n'
        'raise ValueError("TensorRT-LLM refuses it")\n',
        encoding="utf-8",
    )
    (tmp_path / "dyncc" / "engines" / "trtllm").mkdir(parents=True)
    (tmp_path / "dyncc" / "engines" / "trtllm" / "x.py").write_text('M = "trtllm"\n', encoding="utf-8")
    (tmp_path / "dyncc" / "engines" / "__init__.py").write_text('# TRT-LLM\n"a",\n"b",\n', encoding="utf-8")
    found = _mentions(tmp_path)
    assert set(found) == {"dyncc/targets/probe.py", "dyncc/targets/named.py", "dyncc/targets/said.py"}
    assert [line.split(": ", 1)[0] for line in found["dyncc/targets/said.py"]] == ["dyncc/targets/said.py:4"]


def test_the_registry_and_the_spec_name_the_same_engines():
    """A new engine is its package, its registration line and the name the spec accepts for it."""
    assert set(engine_names()) == set(typing.get_args(WorkerRuntime))
    assert [e.name for e in engines()] == [m.rsplit(".", 1)[1] for m in REGISTERED]
    assert sum(e.configures for e in engines()) >= 1  # a stand-in needs an engine whose config it takes
    for declared in engines():
        impl = declared.module_impl()
        assert callable(impl.worker_command) and callable(impl.release_view) and callable(impl.problems)
        assert all(rule.code.startswith("DYN") for rule in impl.RULES)


def test_engines_name_the_aiconfigurator_backend_they_are():
    """An engine AIConfigurator models names its backend (None: it models none); the twin times the engine the
    mock engine stands in for, and its cache key keeps the `<backend>_data` spelling the cached files hash."""
    from dyncc.aic.mapping import Worker
    from dyncc.twin.timing import Grid, PoolTiming

    assert all((e.aic() is None) == (e.aic_backend is None) for e in engines())
    assert engine("mocker").aic() is None
    timed = PoolTiming("m", "h200_sxm", Worker(tp=1, bs=1))
    stood_in_for = configuring(engine("mocker"))
    assert timed.backend == stood_in_for.aic_backend is not None
    key = timed.key(Grid.around(128, 32, 1))
    measured = stood_in_for.aic()
    assert measured is not None and key[f"{stood_in_for.aic_backend}_data"] == measured.version


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_engines_import_no_compiler_or_target_module():
    for path in (DYNCC / "engines").rglob("*.py"):
        wrong = {m for m in _imports(path) if m.startswith(("dyncc.compiler", "dyncc.targets", "dyncc.api"))}
        assert not wrong, (path, wrong)


def test_targets_wrap_the_plans_command_and_never_choose_the_program():
    """No target names an engine's module or compares the spec's worker_runtime: the plan says both."""
    for path in (DYNCC / "targets").rglob("*.py"):
        code = path.read_text(encoding="utf-8")
        assert not re.search(r'"dynamo\.(?!frontend|planner)\w+"', code), path
        assert not re.search(r"worker_runtime\s*[!=]=", code), path


@pytest.mark.parametrize("runtime", ["trtllm", "mocker"])
def test_the_plan_carries_each_workers_whole_command(runtime):
    plan = with_engine(compile_spec(load_spec(EXAMPLES / "disagg_router.yaml")), runtime).plan
    assert plan.engine is engine(runtime)
    for pool in plan.pools:
        assert pool.command.module == plan.engine.module
        args = plan_worker_args(plan, pool, model="/m", engine_dir="/e")
        assert set(pool.command.flags) <= set(args)
        if plan.engine.configures:
            assert ["--extra-engine-args", f"/e/{pool.engine_file}"] == args[4:6]
        else:
            assert ["--model-path", "/m"] == args[:2]  # the stand-in serves a local model directory
