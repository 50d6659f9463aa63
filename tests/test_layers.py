"""The layers the folders show hold in the imports (issue 30): nothing imports upward, and no package circle.

Every module of dyncc/ is read with ast, and every way it can name another dyncc module counts: ``import`` and
``from ... import`` at module level, inside functions and under ``TYPE_CHECKING``, relative ones, and strings
that name a dyncc module (``importlib.import_module("dyncc.x")``, a registry's ``"dyncc.targets.k8s"``, an
f-string starting ``"dyncc.x.``). A module may import its own layer and the layers below it; between the
units of one layer (a package, or a module at the top of dyncc/) imports must not form a circle.
docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module belongs to the layer of the longest prefix here that names it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("dyncc", "dyncc.codes", "dyncc.diagnostics", "dyncc.yaml_text")),
    ("facts", ("dyncc.facts", "dyncc.releases", "dyncc.aic")),
    ("spec", ("dyncc.spec",)),
    ("engines", ("dyncc.engines",)),
    ("compiler", ("dyncc.compiler",)),
    ("targets", ("dyncc.targets",)),
    ("build", ("dyncc.deployment", "dyncc.output", "dyncc.sweep_points", "dyncc.twin")),
    ("api", ("dyncc.api",)),
    ("tools", ("dyncc.tools",)),
    # dyncc.lsp: the language server's public import path (editor integrations import dyncc.lsp.lint).
    ("cli", ("dyncc.cli", "dyncc.__main__", "dyncc.lsp")),
)
# The packages whose children are units of their own for the circle check: each target, engine and tool is
# a part; a circle between two of them is as bad as one between two layers.
PARTS = ("dyncc.targets", "dyncc.engines", "dyncc.tools")
# Arrows that run upward on purpose: (importer, imported) -> why. None today; an entry needs its reason.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def module_names(root: Path) -> dict[str, Path]:
    """Every dyncc module under ``root`` by dotted name (a package by its own name)."""
    names = {}
    for path in sorted((root / "dyncc").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a dyncc module (``dyncc.x.Class`` -> ``dyncc.x``)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(the dyncc module ``module`` imports, line) for every import and module-naming string in it."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        named: list[str] = []
        if isinstance(node, ast.Import):
            named = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from dyncc import api` imports dyncc.api; `from dyncc.x import name` imports dyncc.x.
            named = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("dyncc."):
            if node.value.replace(".", "").replace("_", "").isalnum():  # a dotted name, not prose
                named = [node.value]
        elif isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.startswith("dyncc."):
                named = [head.value.rstrip(".")]
        for name in named:
            target = _known(name, modules) if name.startswith("dyncc") else None
            if target is not None and target != module:
                yield target, node.lineno


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


def unit_of(module: str) -> str:
    """The package (or top-level module) ``module`` is part of, for the circle check."""
    parts = module.split(".")
    if ".".join(parts[:2]) in PARTS and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def upward(root: Path = ROOT) -> list[str]:
    modules = module_names(root)
    found = []
    for module, path in modules.items():
        for target, line in imports(module, path, modules):
            if layer_of(target) > layer_of(module) and (module, target) not in EXCEPTIONS:
                mine, theirs = LAYERS[layer_of(module)][0], LAYERS[layer_of(target)][0]
                found.append(f"{path.relative_to(root)}:{line}: {module} ({mine}) imports {target} ({theirs})")
    return found


def circles(root: Path = ROOT) -> list[list[str]]:
    """The strongly connected sets of units with more than one member (Tarjan's algorithm)."""
    modules = module_names(root)
    edges: dict[str, set[str]] = {}
    for module, path in modules.items():
        for target, _ in imports(module, path, modules):
            a, b = unit_of(module), unit_of(target)
            if a != b and (module, target) not in EXCEPTIONS:
                edges.setdefault(a, set()).add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer():
    assert [m for m in module_names(ROOT) if layer_of(m) < 0] == []


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    assert upward() == []


def test_no_package_circle():
    assert circles() == []


def test_every_exception_names_a_real_arrow_and_says_why():
    modules = module_names(ROOT)
    for (importer, imported), why in EXCEPTIONS.items():
        assert importer in modules and imported in modules, (importer, imported)
        assert len(why) > 20, (importer, imported)


@pytest.fixture
def probe_tree(tmp_path: Path) -> Path:
    """A copy of dyncc/ to plant wrong arrows in."""
    shutil.copytree(ROOT / "dyncc", tmp_path / "dyncc", ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    return tmp_path


@pytest.mark.parametrize(
    "planted",
    [
        "from dyncc.api import build\n",  # module level
        "def f():\n    from dyncc.tools import sweep\n",  # inside a function
        "import importlib\nM = importlib.import_module('dyncc.deployment')\n",  # an import string
        "def f(name):\n    return f'dyncc.targets.{name}'\n",  # an f-string naming a higher package
        "from ..api import check\n",  # relative
    ],
)
def test_an_upward_import_fails(probe_tree: Path, planted: str):
    target = probe_tree / "dyncc" / "spec" / "schema.py"
    target.write_text(target.read_text() + "\n" + planted)
    found = upward(probe_tree)
    assert found and all(line.startswith("dyncc/spec/schema.py:") for line in found), found


def test_a_circle_fails(probe_tree: Path):
    # Two targets importing each other: one layer, so no upward arrow, but a circle between two parts.
    k8s = probe_tree / "dyncc" / "targets" / "k8s" / "__init__.py"
    k8s.write_text(k8s.read_text() + "\nfrom dyncc.targets import compose\n")
    compose = probe_tree / "dyncc" / "targets" / "compose" / "__init__.py"
    compose.write_text(compose.read_text() + "\nfrom dyncc.targets.k8s import impl\n")
    assert upward(probe_tree) == []
    assert circles(probe_tree) == [["dyncc.targets.compose", "dyncc.targets.k8s"]]
