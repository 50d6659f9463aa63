"""Value types of TensorRT-LLM engine keys, per TRT-LLM version, and a check of engine.extra values.

The key-set files (``data/trtllm_<version>_keys.json``) say which keys a TRT-LLM version accepts;
their ``types`` section says what each key's value must be. The types were transcribed from that
version's ``llm_args.py`` (``types_source`` names the commit): the pydantic annotation, the Field
constraints, and the validators that clearly restrict a value further. Keys typed ``Any`` are objects
that cannot come from YAML, or keys whose type lives outside ``llm_args.py`` (``types_uncertain``
says which and why), so an unknown type never refuses a value.

A type is written in a small grammar and parsed here without ``eval``:

    type   := SCALAR [ "(" kw ("," kw)* ")" ]          int(ge=0), float(gt=0, le=1)
            | "Optional[" type "]" | "List[" type "]" | "Dict[" type "," type "]"
            | "Union[" type ("," type)+ "]" | "Literal[" lit ("," lit)* "]"
    SCALAR := int | float | bool | str | PositiveInt | NonNegativeInt | PositiveFloat
            | NonNegativeFloat | Any
    kw     := (ge | gt | le | lt) "=" number | allow_inf_nan "=" (True | False)
    lit    := 'quoted string' | integer | True | False

The parsed type becomes a Python typing object and a pydantic TypeAdapter decides acceptance in lax
mode. TRT-LLM validates the same YAML values with pydantic, so ``"8"`` is an int here exactly when it
is one there, and ``"fast"`` is not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Optional, Union

import msgspec
from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    TypeAdapter,
    ValidationError,
)

from .keys import accepted_keys, keys_versions, nearest_version

_SCALARS: dict[str, Any] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "PositiveInt": PositiveInt,
    "NonNegativeInt": NonNegativeInt,
    "PositiveFloat": PositiveFloat,
    "NonNegativeFloat": NonNegativeFloat,
    "Any": Any,
}
_CONSTRAINABLE = {"int", "float"}
_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
_GENERIC_ARITY = {"Optional": (1, 1), "List": (1, 1), "Dict": (2, 2), "Union": (2, 16)}
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_]\w*)|(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'[^'\\]*')|(?P<punct>[\[\](),=]))")
_MAX_TYPE_LENGTH = 2000  # the data files' longest type is a few hundred characters


class TypeGrammarError(ValueError):
    """A type string that is not in the grammar above."""


class TypeNode(msgspec.Struct, frozen=True):
    """One parsed type: a scalar (with bounds), a generic over other types, or a Literal's values."""

    name: str
    args: tuple[TypeNode, ...] = ()
    literals: tuple[str | int | float | bool, ...] = ()
    bounds: tuple[tuple[str, float | bool], ...] = ()


def parse(text: str) -> TypeNode:
    """Parse one type string of the grammar; raise TypeGrammarError on anything else."""
    if len(text) > _MAX_TYPE_LENGTH:
        raise TypeGrammarError(f"type string longer than {_MAX_TYPE_LENGTH} characters")
    parser = _Parser(_tokens(text))
    node = parser.type()
    if parser.peek() is not None:
        raise TypeGrammarError(f"unexpected {parser.peek()!r} after a complete type in {text!r}")
    return node


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise TypeGrammarError(f"cannot read {text[pos : pos + 20]!r} in {text!r}")
        tokens.append(match.group(match.lastgroup or "name"))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self._tokens = tokens
        self._pos = 0

    def peek(self) -> str | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise TypeGrammarError(f"expected {expected or 'more'}, found {token!r}")
        self._pos += 1
        return token

    def type(self) -> TypeNode:
        name = self.take()
        if name == "Literal":
            return TypeNode(name, literals=self._bracketed(self._literal))
        if name in _GENERIC_ARITY:
            args = self._bracketed(self.type)
            low, high = _GENERIC_ARITY[name]
            if not low <= len(args) <= high:
                raise TypeGrammarError(f"{name} takes {low}..{high} types, got {len(args)}")
            return TypeNode(name, args=args)
        if name not in _SCALARS:
            raise TypeGrammarError(f"unknown type name {name!r}")
        if self.peek() != "(":
            return TypeNode(name)
        if name not in _CONSTRAINABLE:
            raise TypeGrammarError(f"{name} takes no constraints")
        return TypeNode(name, bounds=self._constraints())

    def _bracketed(self, item: Any) -> tuple[Any, ...]:
        self.take("[")
        items = [item()]
        while self.peek() == ",":
            self.take(",")
            items.append(item())
        self.take("]")
        return tuple(items)

    def _literal(self) -> str | int | float | bool:
        token = self.take()
        if token.startswith("'"):
            return token[1:-1]
        if token in ("True", "False"):
            return token == "True"
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        raise TypeGrammarError(f"Literal values are quoted strings, integers or True/False, not {token!r}")

    def _constraints(self) -> tuple[tuple[str, float | bool], ...]:
        self.take("(")
        found: list[tuple[str, float | bool]] = []
        while True:
            key = self.take()
            self.take("=")
            value = self.take()
            if key in _BOUNDS and re.fullmatch(r"-?\d+(\.\d+)?", value):
                found.append((key, float(value) if "." in value else int(value)))
            elif key == "allow_inf_nan" and value in ("True", "False"):
                found.append((key, value == "True"))
            else:
                raise TypeGrammarError(f"unknown constraint {key}={value}")
            separator = self.take()
            if separator == ")":
                return tuple(found)
            if separator != ",":
                raise TypeGrammarError(f"expected ',' or ')' after a constraint, found {separator!r}")


def to_python(node: TypeNode) -> Any:
    """The typing object (pydantic-annotated where bounded) that ``node`` stands for."""
    if node.name == "Literal":
        return Literal.__getitem__(node.literals)
    if node.name in _SCALARS:
        base = _SCALARS[node.name]
        bounds: dict[str, Any] = dict(node.bounds)
        return Annotated[base, Field(**bounds)] if bounds else base
    args = tuple(to_python(arg) for arg in node.args)
    if node.name == "Optional":
        return Optional[args[0]]  # noqa: UP045 - built at run time from the grammar
    if node.name == "List":
        return list[args[0]]  # type: ignore[valid-type]
    if node.name == "Dict":
        return dict[args[0], args[1]]  # type: ignore[valid-type]
    return Union.__getitem__(args)


def describe(node: TypeNode) -> str:
    """The type in words, for error messages: ``an integer > 0``, ``one of 'UCX', 'NIXL'``."""
    if node.name == "Literal":
        return "one of " + ", ".join(repr(v) for v in node.literals)
    if node.name == "Optional":
        return f"{describe(node.args[0])} or null"
    if node.name == "List":
        return f"a list (each item {describe(node.args[0])})"
    if node.name == "Dict":
        value = node.args[1]
        return "a mapping" if value.name == "Any" else f"a mapping (each value {describe(value)})"
    if node.name == "Union":
        return " or ".join(describe(arg) for arg in node.args)
    words = {
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "str": "a string",
        "Any": "any value",
        "PositiveInt": "an integer > 0",
        "NonNegativeInt": "an integer >= 0",
        "PositiveFloat": "a number > 0",
        "NonNegativeFloat": "a number >= 0",
    }[node.name]
    limits = [f"{_BOUNDS[key]} {value}" for key, value in node.bounds if key in _BOUNDS]
    if any(key == "allow_inf_nan" and value is False for key, value in node.bounds):
        limits.append("finite")
    return f"{words} {' and '.join(limits)}" if limits else words


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> tuple[TypeNode, TypeAdapter[Any]]:
    node = parse(text)
    return node, TypeAdapter(to_python(node))


@functools.lru_cache(maxsize=16)
def typed_version(version: str) -> str | None:
    """The key set whose value types check ``version``'s engine configs: its own where it carries types
    (read from that version's llm_args), else the nearest one that does; None where none does."""
    typed = [v for v in keys_versions() if accepted_keys(v).get("types")]
    return nearest_version(version, typed) if typed else None


def type_of(version: str, dotted: str) -> str | None:
    """The value type TRT-LLM ``version`` declares for the engine key ``dotted``, or None if unknown.

    Keys are written as in the key-set file: ``stream_interval``, ``kv_cache_config.dtype``, and per
    variant where a discriminator picks the class: ``speculative_config.MTP.max_draft_len``,
    ``sparse_attention_config.dsa.index_topk``, ``multimodal_config.encoder_cuda_graph.<modality>.buckets``
    (any modality name stands for ``<modality>``).
    """
    data = accepted_keys(version)
    types: dict[str, str] = data.get("types", {})
    for candidate in _spellings(data, dotted):
        if candidate in types:
            return types[candidate]
    return None


def _spellings(data: Mapping[str, Any], dotted: str) -> list[str]:
    """``dotted`` and the other names TRT-LLM reads the same field under (aliases, placeholders)."""
    aliases: dict[str, str] = data.get("aliases", {})
    parts = dotted.split(".")
    found = [dotted, aliases.get(dotted, dotted)]
    if parts[0] in data.get("types_variants", {}) and len(parts) == 3:
        # A per-variant key takes the section's aliases too (speculative_model_dir -> speculative_model).
        target = aliases.get(f"{parts[0]}.{parts[2]}")
        if target:
            found.append(f"{parts[0]}.{parts[1]}.{target.rpartition('.')[2]}")
    placeholders: dict[str, str] = data.get("types_placeholders", {})
    for prefix, placeholder in placeholders.items():
        depth = prefix.count(".") + 1
        if dotted.startswith(prefix + ".") and len(parts) > depth:
            found.append(".".join([prefix, placeholder, *parts[depth + 1 :]]))
    fallbacks: dict[str, str] = data.get("types_fallbacks", {})
    if parts[0] in fallbacks and len(parts) == 2:
        found.append(f"{fallbacks[parts[0]]}.{parts[1]}")
    return found


def value_problem(version: str, dotted: str, value: Any) -> str | None:
    """Why TRT-LLM ``version`` would reject ``value`` for ``dotted``; None if accepted or type unknown."""
    text = type_of(version, dotted)
    if text is None or text == "Any":
        return None
    node, adapter = _compiled(text)
    try:
        adapter.validate_python(value)
    except ValidationError:
        return f"must be {describe(node)} ({text})"
    return None


def value_problems(version: str, config: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Every (path, reason) in an engine config whose value TRT-LLM ``version`` would reject by type.

    Unknown keys are not reported here (``keys.check_engine_config`` does that); sections whose class
    a discriminator picks (``decoding_type``, ``algorithm``) are checked against that class's fields.
    """
    data = accepted_keys(version)
    found: list[tuple[tuple[str, ...], str]] = []
    _walk(version, data, config, (), (), found)
    return found


@functools.lru_cache(maxsize=8)
def _sections(version: str) -> frozenset[str]:
    """Dotted keys that have typed keys beneath them: the only mappings worth walking into."""
    keys = accepted_keys(version).get("types", {})
    return frozenset(key.rsplit(".", i)[0] for key in keys for i in range(1, key.count(".") + 1))


def _walk(
    version: str,
    data: Mapping[str, Any],
    mapping: Mapping[Any, Any],
    path: tuple[str, ...],
    typed: tuple[str, ...],
    found: list[tuple[tuple[str, ...], str]],
) -> None:
    variants: dict[str, str] = data.get("types_variants", {})
    placeholders: dict[str, str] = data.get("types_placeholders", {})
    for key, value in mapping.items():
        if not isinstance(key, str):
            continue
        dotted = ".".join((*typed, key))
        problem = value_problem(version, dotted, value)
        if problem is not None:
            found.append(((*path, key), problem))
            continue
        if not isinstance(value, Mapping) or dotted not in _sections(version):
            continue  # a plain value, or a mapping whose contents TRT-LLM does not type (model_kwargs)
        if dotted in variants:
            tag = value.get(variants[dotted])
            if isinstance(tag, str):  # a missing or unknown tag is the enum/key check's to report
                _walk(version, data, value, (*path, key), (*typed, key, tag), found)
        elif dotted in placeholders:
            for name, item in value.items():
                if isinstance(name, str) and isinstance(item, Mapping):
                    _walk(version, data, item, (*path, key, name), (dotted, placeholders[dotted]), found)
        else:
            _walk(version, data, value, (*path, key), (*typed, key), found)
