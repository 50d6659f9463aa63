"""Load a spec from YAML, keeping every value's file:line:col.

ruamel.yaml's round-trip loader records where each key and value sits; :class:`SourceMap` keeps that
tree so any later step (pydantic here, graph rules in the compiler) can point at the exact value it
complains about. The tree is converted to plain Python before validation so pydantic's strict mode
sees ordinary ``int``/``str``/``dict`` values.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import json
import types
import typing
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from dyncc.diagnostics import Diagnostic, DiagnosticError, Location, YamlPath, format_yaml_path
from dyncc.spec.model import API_VERSION, DeploymentSpec

MAX_SPEC_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64

# Keys people bring from other tools; mapped to ours in did-you-mean hints.
KEY_SYNONYMS = {
    "tp": "tensor_parallel",
    "tensor_parallel_size": "tensor_parallel",
    "pp": "pipeline_parallel",
    "pipeline_parallel_size": "pipeline_parallel",
    "ep": "expert_parallel",
    "moe_expert_parallel_size": "expert_parallel",
    "enable_attention_dp": "attention_dp",
    "dp": "attention_dp",
    "served_model_name": "served_name",
    "model_path": "path",
    "num_replicas": "replicas",
    "router_mode": "mode",
    "migration_limit": "limit",
    "cache_transceiver_config": "kv_transfer",
    "disable_overlap_scheduler": "overlap_scheduler",
    "cuda_graph_config": "cuda_graphs",
    "api_version": "apiVersion",
}


class SourceMap:
    """Answers "where in the file is the value at this YAML path?" from ruamel's position marks."""

    def __init__(self, file: str, root: Any):
        self.file = file
        self.root = root

    def locate(self, path: YamlPath, at_key: bool = False) -> Location:
        """The deepest position along ``path`` that exists; the key itself when ``at_key``."""
        node = self.root
        line, col = _node_position(node)
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, CommentedMap) and part in node:
                child = node[part]
                # A block value starts on the next line; the key is where a reader looks.
                on_key = (last and at_key) or isinstance(child, (CommentedMap, CommentedSeq))
                line, col = node.lc.key(part) if on_key else node.lc.value(part)
                node = child
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line, col = node.lc.item(part)
                node = node[part]
            else:
                break
        return Location(self.file, line + 1, col + 1)

    def has(self, path: YamlPath) -> bool:
        node = self.root
        for part in path:
            if isinstance(node, (CommentedMap, dict)) and part in node:
                node = node[part]
            elif isinstance(node, (CommentedSeq, list)) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return False
        return True


def _node_position(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is not None and lc.line is not None:
        return lc.line, lc.col
    return 0, 0


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """What rules know of the checkpoint, and where each fact came from (``spec``, ``config.json``)."""

    moe: bool | None = None
    num_experts: int | None = None
    mtp_layers: int | None = None
    local_dir: str | None = None  # the checkpoint directory, when model.path names one on this machine
    source: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class LoadedSpec:
    spec: DeploymentSpec
    source: SourceMap
    facts: ModelFacts
    base_dir: Path

    @property
    def file(self) -> str:
        return self.source.file


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate one spec file; raises :class:`DiagnosticError` with located diagnostics."""
    path = Path(path)
    name = str(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(name)
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN002",
                    f"cannot read spec file: {reason}",
                    hint="pass the path of a spec YAML file",
                    location=Location(name, 1, 1),
                )
            ]
        ) from None
    return load_spec_text(raw, name, base_dir=path.parent)


def load_yaml_data(raw: bytes | str, file: str = "<string>") -> tuple[Any, SourceMap]:
    """The document as plain Python data, with the SourceMap that locates its values."""
    tree = parse_yaml(raw, file)
    source = SourceMap(file, tree)
    return _to_plain(tree, file, source), source


def load_spec_text(raw: bytes | str, file: str = "<string>", base_dir: Path | None = None) -> LoadedSpec:
    data, source = load_yaml_data(raw, file)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN003",
                    f"a spec is a YAML mapping; this document is {kind}",
                    hint=f"start from a file in examples/ (first key: `apiVersion: {API_VERSION}`)",
                    location=source.locate(()),
                )
            ]
        )
    try:
        spec = DeploymentSpec.model_validate(data)
    except ValidationError as exc:
        raise DiagnosticError(_diagnostics_from_validation(exc, source)) from None
    base = base_dir if base_dir is not None else Path.cwd()
    facts = read_model_facts(spec, base, source)
    return LoadedSpec(spec=spec, source=source, facts=facts, base_dir=base)


def parse_yaml(raw: bytes | str, file: str) -> Any:
    if len(raw) > MAX_SPEC_BYTES:
        raise DiagnosticError(
            [Diagnostic("DYN001", f"spec is larger than {MAX_SPEC_BYTES} bytes", location=Location(file, 1, 1))]
        )
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DiagnosticError(
                [
                    Diagnostic(
                        "DYN001",
                        f"spec is not UTF-8 text (bad byte at offset {exc.start})",
                        hint="save the file as UTF-8",
                        location=Location(file, 1, 1),
                    )
                ]
            ) from None
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(io.StringIO(raw))
    except MarkedYAMLError as exc:
        # An unclosed bracket or quote is found at the end of the stream; where it opened is more useful.
        at_end = "end of the stream" in str(exc.problem) or "<stream end>" in str(exc.problem)
        mark = (exc.context_mark if at_end and exc.context_mark else None) or exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN001",
                    f"YAML syntax error: {problem or 'malformed YAML'}",
                    hint="fix the YAML at this position",
                    location=loc,
                )
            ]
        ) from None
    except (YAMLError, RecursionError, ValueError, TypeError) as exc:
        # ruamel raises a few plain errors for pathological input (deep nesting, bad escapes).
        message = "nesting too deep" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:200]
        raise DiagnosticError(
            [Diagnostic("DYN001", f"YAML could not be read: {message}", location=Location(file, 1, 1))]
        ) from None


def _to_plain(node: Any, file: str, source: SourceMap, path: YamlPath = ()) -> Any:
    """ruamel's tree as plain dict/list/scalars; non-string keys and runaway nesting are errors here."""
    if len(path) > MAX_DEPTH:
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN012", f"nesting deeper than {MAX_DEPTH} levels", path=path[:8], location=source.locate(path)
                )
            ]
        )
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise DiagnosticError(
                    [
                        Diagnostic(
                            "DYN012",
                            f"mapping keys are strings; got {type(key).__name__} {key!r:.40}",
                            path=path,
                            hint="quote the key",
                            location=source.locate(path),
                        )
                    ]
                )
            out[key] = _to_plain(value, file, source, path + (key,))
        return out
    if isinstance(node, list):
        return [_to_plain(v, file, source, path + (i,)) for i, v in enumerate(node)]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    # Timestamps, binary and other YAML tags: keep them, pydantic reports the wrong type.
    return node


# --- pydantic errors -> diagnostics ------------------------------------------------------------

_RANGE_ERRORS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "string_too_short",
    "string_too_long",
    "string_pattern_mismatch",
    "too_short",
    "too_long",
    "value_error",
    "finite_number",
    "multiple_of",
}


def _diagnostics_from_validation(exc: ValidationError, source: SourceMap) -> list[Diagnostic]:
    diagnostics = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if part != "[key]")
        key_error = "[key]" in error["loc"]
        diagnostics.append(_diagnostic_for(error, loc, key_error, source))
    return sorted(
        set(diagnostics), key=lambda d: (d.location.line, d.location.column, d.code) if d.location else (0, 0, d.code)
    )


def _diagnostic_for(error: dict, loc: YamlPath, key_error: bool, source: SourceMap) -> Diagnostic:
    kind = error["type"]
    msg = error["msg"]
    where = format_yaml_path(loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _valid_keys(loc[:-1])
        suggestion = _did_you_mean(key, valid)
        hint = f"did you mean `{suggestion}`?" if suggestion else None
        if valid:
            hint = (hint + " " if hint else "") + "allowed here: " + ", ".join(sorted(valid))
        return Diagnostic(
            "DYN010", f"unknown key `{key}`", path=loc, hint=hint, location=source.locate(loc, at_key=True)
        )
    if kind == "missing":
        parent = loc[:-1]
        return Diagnostic(
            "DYN011",
            f"missing required key `{loc[-1]}`",
            path=loc,
            hint=f"add `{loc[-1]}:` " + (f"under {format_yaml_path(parent)}" if parent else "at the top level"),
            location=source.locate(parent),
        )
    if loc == ("apiVersion",) and kind == "literal_error":
        return Diagnostic(
            "DYN004",
            f"unsupported apiVersion {error.get('input')!r}",
            path=loc,
            hint=f"this dyncc reads `apiVersion: {API_VERSION}`",
            location=source.locate(loc),
        )
    if kind in ("literal_error", "enum"):
        allowed = _literal_values(loc)
        value = error.get("input")
        suggestion = _did_you_mean(str(value), [str(a) for a in allowed]) if isinstance(value, str) else None
        hint = f"did you mean `{suggestion}`? " if suggestion else ""
        hint += "one of: " + ", ".join(str(a) for a in allowed) if allowed else msg
        return Diagnostic(
            "DYN014",
            f"{where}: {value!r:.80} is not an accepted value",
            path=loc,
            hint=hint,
            location=source.locate(loc),
        )
    if kind in _RANGE_ERRORS:
        text = msg.removeprefix("Value error, ")
        if key_error:
            text = f"key {loc[-1]!r:.80} is invalid: {text}"
        return Diagnostic(
            "DYN013",
            f"{where}: {text}",
            path=loc,
            hint=_range_hint(kind, error),
            location=source.locate(loc, at_key=key_error),
        )
    value = error.get("input")
    got = type(value).__name__ if value is not None else "null"
    return Diagnostic(
        "DYN012",
        f"{where}: {msg.lower()} (got {got})",
        path=loc,
        hint="check the value's type; quote strings that look like numbers",
        location=source.locate(loc),
    )


def _range_hint(kind: str, error: dict) -> str:
    ctx = error.get("ctx", {})
    bounds = {
        "greater_than": "above {gt}",
        "greater_than_equal": "of at least {ge}",
        "less_than": "below {lt}",
        "less_than_equal": "of at most {le}",
        "string_too_short": "of at least {min_length} character(s)",
        "string_too_long": "of at most {max_length} characters",
        "too_short": "with at least {min_length} item(s)",
        "too_long": "with at most {max_length} items",
        "multiple_of": "that is a multiple of {multiple_of}",
    }
    if kind in bounds:
        return "use a value " + bounds[kind].format(**ctx)
    if kind == "string_pattern_mismatch":
        return f"the value must match the pattern {ctx.get('pattern')}"
    if kind == "finite_number":
        return "use a finite number"
    return "change the value as the message says"


def _did_you_mean(word: str, candidates: list[str] | set[str]) -> str | None:
    if word in KEY_SYNONYMS and KEY_SYNONYMS[word] in candidates:
        return KEY_SYNONYMS[word]
    matches = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    if matches:
        return matches[0]
    # `kv-aware` -> `kv`, `tensor` -> `tensor_parallel`: one is the start of the other.
    prefixed = sorted(
        c for c in candidates if len(c) >= 2 and (word.startswith(c) or c.startswith(word)) and len(word) >= 2
    )
    return max(prefixed, key=len) if prefixed else None


def _field_annotation(loc: YamlPath) -> Any:
    """The type annotation reached by following ``loc`` down from :class:`DeploymentSpec`."""
    current: Any = DeploymentSpec
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    return _unwrap_optional(current)


def _unwrap_optional(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _valid_keys(loc: YamlPath) -> set[str]:
    model = _field_annotation(loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {f.alias or n for n, f in model.model_fields.items()}
    return set()


def _literal_values(loc: YamlPath) -> list[Any]:
    annotation = _field_annotation(loc)
    return list(typing.get_args(annotation)) if typing.get_origin(annotation) is typing.Literal else []


# --- model facts ---------------------------------------------------------------------------------

# config.json keys that different model families use for the same facts.
_EXPERT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
_MTP_KEYS = ("num_nextn_predict_layers",)


def read_model_facts(spec: DeploymentSpec, base_dir: Path, source: SourceMap) -> ModelFacts:
    """Facts from the spec, filled in from ``config.json`` when the model path is a local directory."""
    model = spec.model
    facts = {"moe": model.moe, "num_experts": model.num_experts, "mtp_layers": model.mtp_layers}
    origin = {k: "spec" for k, v in facts.items() if v is not None}
    model_dir = Path(model.path) if Path(model.path).is_absolute() else base_dir / model.path
    local_dir = str(model_dir.resolve()) if model_dir.is_dir() else None
    config_path = model_dir / "config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DiagnosticError(
                [
                    Diagnostic(
                        "DYN015",
                        f"model config {config_path} is unreadable: {str(exc)[:120]}",
                        path=("model", "path"),
                        hint="fix the checkpoint's config.json, or state the model facts in the spec",
                        location=source.locate(("model", "path")),
                    )
                ]
            ) from None
        config = config if isinstance(config, dict) else {}
        experts = next((config[k] for k in _EXPERT_KEYS if isinstance(config.get(k), int)), None)
        mtp = next((config[k] for k in _MTP_KEYS if isinstance(config.get(k), int)), None)
        found = {
            "num_experts": experts,
            "moe": (experts or 0) > 1 if experts is not None else False,
            "mtp_layers": mtp if mtp is not None else 0,
        }
        for key, value in found.items():
            if facts[key] is None and value is not None:
                facts[key] = value
                origin[key] = str(config_path)
    if facts["moe"] is None and facts["num_experts"] is not None:
        facts["moe"] = facts["num_experts"] > 1
        origin["moe"] = origin["num_experts"]
    return ModelFacts(**facts, local_dir=local_dir, source=origin)
