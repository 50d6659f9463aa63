"""The escape hatch, still checked: ``merge`` (a deep merge, as a strategic-merge patch without list keys)
and ``patches`` (RFC 6902 operations) on one DGD component, applied by dyncc; the result is checked
against the CRD schema like everything else, and an error is reported at the patch that caused it.

Evaluation is bounded (DYN550): a `copy` doubles what it copies, so a few operations could otherwise grow
a component exponentially (18 copies of /podTemplate: minutes and GBs). Each value is measured before it
is copied in, and the component after every operation, against :data:`LIMITS`.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import msgspec

from dyncc.diagnostics import Diagnostic
from dyncc.targets.k8s.settings import ComponentSettings, JsonPatch

Path = tuple[str | int, ...]


class PatchError(Exception):
    pass


class PatchTooLarge(Exception):
    pass


class Limits(msgspec.Struct, frozen=True):
    """Bounds of one component's patching. A generated component has ~150 nodes, ~10 levels and a few KB;
    real site patches add a few dozen operations."""

    ops: int = 100
    nodes: int = 20_000
    text_bytes: int = 1024 * 1024  # keys and strings; the API server's object limit is 1.5 MiB
    depth: int = 64
    seconds: float = 5.0


LIMITS = Limits()


def measure(value: Any, max_nodes: int) -> tuple[int, int, int]:
    """(nodes, bytes of keys and strings, depth) of ``value``; stops counting past ``max_nodes``.
    Iterative: a patched value may be deeper than Python's recursion limit allows."""
    nodes = text = depth = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack and nodes <= max_nodes:
        node, level = stack.pop()
        nodes += 1
        depth = max(depth, level)
        if isinstance(node, dict):
            for key, item in node.items():
                text += len(str(key))
                stack.append((item, level + 1))
        elif isinstance(node, list):
            stack.extend((item, level + 1) for item in node)
        elif isinstance(node, str):
            text += len(node)
    return nodes, text, depth


def check_size(component: Any, limits: Limits = LIMITS) -> str | None:
    """Why ``component`` is over the limits, or None."""
    nodes, text, depth = measure(component, limits.nodes)
    if nodes > limits.nodes:
        return f"it would grow past {limits.nodes} values"
    if text > limits.text_bytes:
        return f"it would hold {text // 1024} KiB of text (at most {limits.text_bytes // 1024} KiB)"
    if depth > limits.depth:
        return f"it would nest {depth} levels deep (at most {limits.depth})"
    return None


def _check_insert(component: Any, value: Any, limits: Limits) -> None:
    """Refuse, before copying, a value that would take the component past the limits."""
    nodes, text, _ = measure(component, limits.nodes)
    more_nodes, more_text, _ = measure(value, limits.nodes)
    if nodes + more_nodes > limits.nodes:
        raise PatchTooLarge(f"it would grow the component past {limits.nodes} values")
    if text + more_text > limits.text_bytes:
        raise PatchTooLarge(f"it would grow the component past {limits.text_bytes // 1024} KiB of text")


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


def apply_op(doc: dict[str, Any], op: JsonPatch, limits: Limits = LIMITS) -> None:
    if op.op == "add":
        _check_insert(doc, op.value, limits)
        _add(doc, op.path, op.value)
    elif op.op == "remove":
        _remove(doc, op.path)
    elif op.op == "replace":
        _check_insert(doc, op.value, limits)
        _remove(doc, op.path)
        _add(doc, op.path, op.value)
    elif op.op in ("copy", "move"):
        if op.from_ is None:
            raise PatchError(f"{op.op} needs `from`")
        if op.op == "move":
            value = _remove(doc, op.from_)
        else:
            source = _get(doc, op.from_)
            _check_insert(doc, source, limits)
            value = copy.deepcopy(source)
        _add(doc, op.path, value)
    elif _get(doc, op.path) != op.value:
        raise PatchError(f"test failed: the value at {op.path} is not {op.value!r}")
    too_large = check_size(doc, limits)
    if too_large:
        raise PatchTooLarge(too_large)


def touched(op: JsonPatch, doc: Any = None) -> Path:
    """The path ``op`` writes; an appending `-` is resolved against ``doc`` as it is before the op."""
    tokens: list[str | int] = [int(t) if t.isdigit() else t for t in _tokens(op.path)]
    if tokens and tokens[-1] == "-" and op.op in ("add", "copy", "move"):
        try:
            parent = _get(doc, op.path.rsplit("/", 1)[0])
        except PatchError:
            return tuple(tokens)
        if isinstance(parent, list):
            tokens[-1] = len(parent)
    return tuple(tokens)


def apply(
    component: dict[str, Any],
    own: ComponentSettings,
    section: Path,
    label: str,
    limits: Limits = LIMITS,
) -> tuple[dict[str, Any], list[tuple[Path, Path]], list[Diagnostic]]:
    """The patched component (``label``: its name, for messages); for each patch, (what it touched in the
    component, its spec path); DYN541 for an operation that cannot apply, DYN550 (and no further
    operations) past the limits."""
    blame: list[tuple[Path, Path]] = []
    problems: list[Diagnostic] = []
    if own.merge:
        component = deep_merge(component, own.merge)
        blame += [(p, ("k8s", *section, "merge", *p)) for p in _leaf_paths(own.merge)]
        too_large = check_size(component, limits)
        if too_large:
            return component, blame, [_too_large(label, ("k8s", *section, "merge"), too_large)]
    if len(own.patches) > limits.ops:
        reason = f"{len(own.patches)} operations; at most {limits.ops} are applied to one component"
        return component, blame, [_too_large(label, ("k8s", *section, "patches"), reason)]
    deadline = time.monotonic() + limits.seconds
    for i, op in enumerate(own.patches):
        where = ("k8s", *section, "patches", i)
        written = touched(op, component)
        try:
            apply_op(component, op, limits)
        except PatchTooLarge as exc:
            return component, blame, [*problems, _too_large(label, where, str(exc))]
        except PatchError as exc:
            problems.append(
                Diagnostic(
                    "DYN541",
                    f"JSON patch `{op.op} {op.path}` cannot apply to the {label} component: {exc}",
                    path=where,
                    hint="write the path as the component has it in the generated dynamographdeployment.yaml; paths "
                    "start at the component: /podTemplate/spec/... (v1beta1), /extraPodSpec/... (v1alpha1)",
                )
            )
            continue
        blame.append((written, where))
        if time.monotonic() > deadline:
            reason = f"applying the patches took over {limits.seconds:g} s"
            return component, blame, [*problems, _too_large(label, where, reason)]
    return component, blame, problems


def _too_large(label: str, path: Path, reason: str) -> Diagnostic:
    return Diagnostic(
        "DYN550",
        f"the patches of the {label} component are refused here: {reason}",
        path=path,
        hint="patch the fields you need, not whole subtrees (a `copy` of /podTemplate doubles the component)",
    )


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
