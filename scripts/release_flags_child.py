#!/usr/bin/env python3
"""The child of scripts/release_flags.py: run as `python3 -I scripts/release_flags_child.py TREE` with a
request on stdin, in a fresh interpreter that sees only the release's own `dynamo` (unpacked in TREE).

Third-party modules the parsers import but do not need are inert stand-ins; the component's parser function
runs until its first parse call, where the parser is taken and every action read ("extract"), or to its end
on each given command line ("parse"). It prints one JSON answer on stdout. Self-contained: under `-I` the
script's own directory is not on sys.path, so it imports nothing from beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import re
import sys
import tempfile
import types
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath
from typing import Any

MODULES = {"worker": "dynamo.trtllm", "frontend": "dynamo.frontend", "mocker": "dynamo.mocker"}
# Where each component builds its parser, newest layout first (the first whose file the wheel holds).
PARSER_FUNCTIONS = {
    "worker": [("dynamo.trtllm.args", "parse_args"), ("dynamo.trtllm.utils.trtllm_utils", "cmd_line_args")],
    "frontend": [("dynamo.frontend.main", "parse_args")],
    "mocker": [("dynamo.mocker.args", "parse_args"), ("dynamo.mocker.main", "cmd_line_args")],
}
# Imported by the parsers' modules but never needed to build a parser; stood in for even where installed,
# so the result does not depend on what else this machine has.
STUBBED = {
    "tensorrt_llm", "torch", "torchvision", "uvloop", "nixl", "cupy", "transformers", "prometheus_client",
    "kubernetes", "kubernetes_asyncio", "numpy", "zmq", "msgpack", "vllm", "sglang", "triton", "safetensors",
    "kvbm", "PIL", "cv2", "av",
}  # fmt: skip
# TensorRT-LLM's BuildConfig defaults (1.1-1.3), used only when parsing: a default read from TensorRT-LLM is
# a value there, not a name (validation compares them).
TRTLLM_BUILD_DEFAULTS = {"max_batch_size": 2048, "max_num_tokens": 8192, "max_seq_len": None, "max_beam_width": 1}


class _Stub(type):
    """An inert stand-in for anything a stubbed module exports: a class (so it can be subclassed or used in
    isinstance), whose attributes, items and calls are stand-ins too. `origin` names where it came from."""

    origin: tuple[str, ...]

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _stub(cls.origin + (name,))

    def __getitem__(cls, key: Any) -> Any:
        return _stub(cls.origin + (str(key),))

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and callable(args[0]) and not isinstance(args[0], _Stub):
            return args[0]  # used as a decorator: the decorated function stays itself
        return _stub(cls.origin + ("()",))

    def __or__(cls, other: Any) -> Any:
        return cls

    __ror__ = __or__

    def __iter__(cls) -> Any:
        return iter(())

    def __len__(cls) -> int:
        return 0

    def __repr__(cls) -> str:
        return describe_stub(cls.origin)


def _stub(origin: tuple[str, ...]) -> Any:
    if _PARSING:  # a TensorRT-LLM default the parser reads: its value, so validation can compare it
        fields = [p for p in origin[2:] if p not in ("model_fields", "default")]
        waiting = "model_fields" in origin and origin[-1] != "default"
        if origin[0] == "tensorrt_llm" and len(fields) == 1 and fields[0] in TRTLLM_BUILD_DEFAULTS and not waiting:
            return TRTLLM_BUILD_DEFAULTS[fields[0]]
    return _Stub(origin[-1], (), {"origin": origin, "__module__": origin[0]})


def describe_stub(origin: Sequence[str]) -> str:
    """`@tensorrt_llm:BuildConfig.max_batch_size` for BuildConfig.max_batch_size and for
    BuildConfig.model_fields["max_batch_size"].default alike (module path dropped after the package)."""
    top, rest = origin[0], [p for p in origin[1:] if p not in ("model_fields", "default", "()")]
    names = [p for p in rest if p[:1].isupper()]
    start = rest.index(names[0]) if names else max(len(rest) - 1, 0)
    return f"@{top}:{'.'.join(rest[start:])}"


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _stub((self.__name__.split(".")[0], *self.__name__.split(".")[1:], name))


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """First on sys.meta_path for STUBBED; last for anything else no other finder has (never `dynamo`)."""

    def __init__(self, forced: bool) -> None:
        self.forced = forced

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        top = name.split(".")[0]
        if top == "dynamo" or (self.forced and top not in STUBBED):
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec: Any) -> types.ModuleType:
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


_PARSING = False


class _Captured(BaseException):  # not an Exception: the parser functions' own `except Exception` let it by
    pass


def _isolate(tree: Path) -> None:
    """`dynamo` is the release's tree alone (the wheels hold no dynamo/__init__.py: a namespace package
    would merge in any installed Dynamo)."""
    sys.path.insert(0, str(tree))
    package = types.ModuleType("dynamo")
    package.__path__ = [str(tree / "dynamo")]
    package.__spec__ = importlib.machinery.ModuleSpec("dynamo", None, is_package=True)
    package.__spec__.submodule_search_locations = package.__path__
    sys.modules["dynamo"] = package
    sys.meta_path.insert(0, _StubFinder(forced=True))
    sys.meta_path.append(_StubFinder(forced=False))


def _parser_function(tree: Path, component: str) -> tuple[str, str]:
    for module, function in PARSER_FUNCTIONS[component]:
        if (tree / (module.replace(".", "/") + ".py")).exists():
            return module, function
    raise SystemExit(f"no known parser function for {component} in this release: {PARSER_FUNCTIONS[component]}")


def _capture_first_parser(call: Any) -> argparse.ArgumentParser:
    seen: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_known_args

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        seen.append(self)
        raise _Captured

    argparse.ArgumentParser.parse_known_args = capture  # type: ignore[method-assign]
    try:
        call()
    except _Captured:
        pass
    finally:
        argparse.ArgumentParser.parse_known_args = original  # type: ignore[method-assign]
    if not seen:
        raise SystemExit("the parser function returned without parsing")
    return seen[0]


def _plain(value: Any) -> Any:
    """A default or choice as JSON: enum members by value, paths as text, stand-ins by origin."""
    import enum

    if isinstance(value, _Stub):
        return repr(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, PurePath):
        return str(value)
    return f"@repr:{value!r}"  # a sentinel object: its repr (with its address) is all there is to say


_KINDS = [  # most specific first: store_true is a store_const
    (argparse.BooleanOptionalAction, "bool(--x/--no-x)"),
    (argparse._StoreTrueAction, "store_true"),
    (argparse._StoreFalseAction, "store_false"),
    (argparse._StoreConstAction, "store_const"),
    (argparse._AppendAction, "append"),
    (argparse._StoreAction, None),
]
_DEPRECATION_WORDS = re.compile(r"deprecat|ignored|will be removed|removed in (?:v?\d|Dynamo|a future)", re.I)


def _deprecation_marker(action: argparse.Action) -> Any:
    """Dynamo 1.6's Deprecated(replacement, remove_in), kept in the closure of the action class it makes."""
    call = type(action).__dict__.get("__call__")
    for cell in getattr(call, "__closure__", None) or ():
        owner = getattr(cell.cell_contents, "__self__", None)
        if owner is not None and hasattr(owner, "remove_in") and hasattr(owner, "replacement"):
            return owner
    return None


def _kind(action: argparse.Action) -> str | None:
    """Subclasses of argparse's own actions (Dynamo's deprecation wrappers) count as their base."""
    for base, name in _KINDS:
        if isinstance(action, base):
            return name
    return f"custom:{type(action).__name__}"


def describe(action: argparse.Action, registries: list[set[str]]) -> tuple[str, dict[str, Any]]:
    """(flag, its fields) in dynamo-releases.json's legend."""
    long = [s for s in action.option_strings if s.startswith("--")]
    flag = long[0] if long else (action.option_strings or [action.dest])[0]
    kind = _kind(action)
    help_text = action.help if isinstance(action.help, str) else ""
    hidden = action.help == argparse.SUPPRESS
    negative = "--no-" + flag[2:]
    fields: dict[str, Any] = {}
    if kind:
        fields["kind"] = kind
    aliases = [
        s for s in action.option_strings if s != flag and not (kind and kind.startswith("bool") and s == negative)
    ]
    if aliases:
        fields["aliases"] = aliases
    obsolete = re.search(r"^deprecating flag: (\S+)", help_text, re.M)
    if obsolete:
        fields["deprecated_alias"] = obsolete.group(1)
    if action.dest != flag.lstrip("-").replace("-", "_"):
        fields["dest"] = action.dest
    if action.type is not None and action.type is not str:
        fields["type"] = getattr(action.type, "__name__", type(action.type).__name__)
    if action.nargs is not None and not (kind and action.nargs == 0):
        fields["nargs"] = action.nargs
    if action.choices is not None:
        choices = [_plain(c) for c in action.choices]
        registry = any(set(choices) == names for names in registries if names)
        fields["choices"] = sorted(choices) if registry else choices
        if registry:
            fields["choices_from"] = "dynamo._core (ai-dynamo-runtime) parser registry"
    default = action.default
    if default is not None and not (kind == "store_true" and default is False):
        fields["default"] = _plain(default)
    env = re.search(r"^env var: (\S+)", help_text, re.M)
    if env:
        fields["env"] = env.group(1)
    mentioned = list(dict.fromkeys(re.findall(r"\bDYN_[A-Z0-9_]+", help_text)))
    if mentioned and not env:  # releases before the uniform "env var:" line
        fields["env_in_help"] = mentioned
    if hidden:
        fields["hidden"] = True
    marker = _deprecation_marker(action)
    if marker is not None:
        fields["deprecated"] = f"deprecated, removed in {marker.remove_in}; use {marker.replacement}"
    else:
        prose = help_text.split("\nenv var:", 1)[0]
        said = [s for s in re.split(r"(?<=[.!?])\s+", prose.strip()) if _DEPRECATION_WORDS.search(s)]
        if said:
            fields["deprecated"] = " ".join(said)
        elif "Deprecated" in type(action).__name__:
            fields["deprecated"] = "deprecated (DeprecatedAction)"
    if action.required:
        fields["required"] = True
    return flag, fields


def _registries() -> list[set[str]]:
    """The runtime's tool-call and reasoning parser names: choices drawn from them are listed sorted."""
    names = []
    core = importlib.import_module("dynamo._core")
    for getter in ("get_tool_parser_names", "get_reasoning_parser_names"):
        with contextlib.suppress(Exception):
            names.append(set(getattr(core, getter)()))
    return names


def _read_parser(parser: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    registries = _registries()
    flags: dict[str, dict[str, Any]] = {}
    skip = (argparse._HelpAction, argparse._VersionAction)
    for action in parser._actions:
        if not isinstance(action, skip):
            flag, fields = describe(action, registries)
            flags[flag] = fields
    listed = {id(a) for a in parser._actions}
    for group in parser._action_groups:  # shown in --help, parsed elsewhere (worker router advertisement)
        for action in group._group_actions:
            if id(action) not in listed and not isinstance(action, skip):
                listed.add(id(action))
                flag, fields = describe(action, registries)
                flags[flag] = {**fields, "router_advert": True}
    return flags


def _constants(module: types.ModuleType) -> dict[str, Any]:
    import enum

    out = {}
    for name, value in vars(module).items():
        if name.startswith("DEFAULT_") and isinstance(value, (str, int, float, enum.Enum)):
            out[name] = _plain(value)
    return out


@contextlib.contextmanager
def _stderr_to(path: str) -> Iterator[None]:
    """fd 2 into a file: argparse, logging handlers made at import, and Rust all write there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error_text(log: str) -> str:
    lines = [line for line in _ANSI.sub("", log).strip().splitlines() if line.strip()]
    said = [line for line in lines if re.search(r"\berror\b|Unrecognized|Unknown arg", line, re.I)]
    return "\n".join((said or lines)[-3:])[-1000:]


def _parse_one(function: Any, component: str, argv: list[str]) -> dict[str, Any]:
    """{"ok", "error", "deprecations"}: the lines of the release's own output that say deprecated."""
    sys.argv = [f"python3 -m {MODULES[component]}", *argv]
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        result = {"ok": True, "error": ""}
        try:
            with _stderr_to(log.name), warnings.catch_warnings():
                warnings.simplefilter("always")  # each line's deprecation warnings, not only the first's
                function()
        except SystemExit as exc:
            if exc.code not in (0, None):
                result = {"ok": False, "error": _error_text(log.read()) or str(exc.code)}
        except Exception as exc:  # the release's own validation (ValueError, ...)
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        log.seek(0)
        said = _ANSI.sub("", log.read()).splitlines()
        result["deprecations"] = [line.strip() for line in said if re.search(r"deprecat", line, re.I)]
    return result


def _child(tree: Path) -> int:
    global _PARSING
    request = json.load(sys.stdin)
    # What the release prints while importing must not mix with the answer on stdout.
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _isolate(tree)
    component = request["component"]
    module_name, function_name = _parser_function(tree, component)
    _PARSING = request["mode"] == "parse"
    module = importlib.import_module(module_name)
    function = getattr(module, function_name)
    if request["mode"] == "extract":
        sys.argv = [f"python3 -m {MODULES[component]}"]
        parser = _capture_first_parser(function)
        result: Any = {
            "function": [module_name, function_name],
            "flags": _read_parser(parser),
            "constants": _constants(module),
        }
    else:
        result = [_parse_one(function, component, argv) for argv in request["argvs"]]
    answer.write(json.dumps(result))
    answer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1])))
