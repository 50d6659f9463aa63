"""The escape hatch, still checked: ``merge`` (a deep merge, as a strategic-merge patch without list keys)
and ``patches`` (RFC 6902 operations) on one DGD component, applied by dyncc; the result is checked
against the CRD schema like everything else, and an error is reported at the patch that caused it.
"""

from __future__ import annotations

import copy
from typing import Any

from dyncc.diagnostics import Diagnostic
from dyncc.targets.k8s.settings import ComponentSettings, JsonPatch

Path = tuple[str | int, ...]


class PatchError(Exception):
    pass


def deep_merge(base: Any, overlay: Any) -> Any:
    """``overlay`` onto ``base``: mappings merge key by key, a null deletes a key, anything else replaces."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return copy.deepcopy(overlay)
    out = dict(base)
    for key, value in overlay.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = deep_merge(base.get(key), value)
    return out


def _tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _parent(doc: Any, tokens: list[str]) -> tuple[Any, str]:
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token)
    return node, tokens[-1]


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise PatchError(f"no {token!r} there")


def _index(node: list, token: str, adding: bool) -> int:
    if token == "-" and adding:
        return len(node)
    if not token.isdigit() or int(token) > len(node) - (0 if adding else 1):
        raise PatchError(f"list index {token!r} out of range (the list has {len(node)} items)")
    return int(token)


def _add(doc: Any, pointer: str, value: Any) -> None:
    parent, last = _parent(doc, _tokens(pointer))
    if isinstance(parent, list):
        parent.insert(_index(parent, last, adding=True), copy.deepcopy(value))
    elif isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    else:
        raise PatchError("the parent is not an object or a list")


def _remove(doc: Any, pointer: str) -> Any:
    parent, last = _parent(doc, _tokens(pointer))
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, adding=False))
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    raise PatchError(f"no {last!r} to remove")


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for token in _tokens(pointer):
        node = _child(node, token)
    return node


def apply_op(doc: dict[str, Any], op: JsonPatch) -> None:
    if op.op == "add":
        _add(doc, op.path, op.value)
    elif op.op == "remove":
        _remove(doc, op.path)
    elif op.op == "replace":
        _remove(doc, op.path)
        _add(doc, op.path, op.value)
    elif op.op in ("copy", "move"):
        if op.from_ is None:
            raise PatchError(f"{op.op} needs `from`")
        value = _remove(doc, op.from_) if op.op == "move" else copy.deepcopy(_get(doc, op.from_))
        _add(doc, op.path, value)
    elif _get(doc, op.path) != op.value:
        raise PatchError(f"test failed: the value at {op.path} is not {op.value!r}")


def touched(op: JsonPatch) -> Path:
    return tuple(int(t) if t.isdigit() else t for t in _tokens(op.path))


def apply(
    component: dict[str, Any], own: ComponentSettings, section: tuple[str, ...]
) -> tuple[dict[str, Any], list[tuple[Path, Path]], list[Diagnostic]]:
    """The patched component; for each patch, (what it touched in the component, its spec path);
    DYN541 for an operation that cannot apply."""
    blame: list[tuple[Path, Path]] = []
    problems: list[Diagnostic] = []
    if own.merge:
        component = deep_merge(component, own.merge)
        blame += [(p, ("k8s", *section, "merge", *p)) for p in _leaf_paths(own.merge)]
    for i, op in enumerate(own.patches):
        try:
            apply_op(component, op)
        except PatchError as exc:
            problems.append(
                Diagnostic(
                    "DYN541",
                    f"JSON patch `{op.op} {op.path}` cannot apply to the {component.get('name')} component: {exc}",
                    path=("k8s", *section, "patches", i),
                    hint="write the path as the component has it (see the generated dynamographdeployment.yaml, "
                    "paths start below spec.components[]: /podTemplate/spec/...)",
                )
            )
            continue
        blame.append((touched(op), ("k8s", *section, "patches", i)))
    return component, blame, problems


def _leaf_paths(merge: dict[str, Any], prefix: Path = ()) -> list[Path]:
    out: list[Path] = []
    for key, value in merge.items():
        if isinstance(value, dict) and value:
            out += _leaf_paths(value, (*prefix, key))
        else:
            out.append((*prefix, key))
    return out


def culprit(error_path: Path, blame: list[tuple[Path, Path]]) -> Path | None:
    """The spec path of the last patch that touched ``error_path`` (or something above or below it)."""
    for did, spec_path in reversed(blame):
        n = min(len(did), len(error_path))
        if did[:n] == error_path[:n]:
            return spec_path
    return None
