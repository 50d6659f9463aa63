"""The imported spec as a file: tidied, checked by dyncc's own loader and rules (an engine key the loader
refuses is dropped with a note), and written with a header naming every note; the text is read back to
show it holds exactly the spec.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from dyncc.diagnostics import Diagnostic, DiagnosticError, YamlPath, printable
from dyncc.tools.import_input import read_sources
from dyncc.tools.importer.builder import SpecBuilder
from dyncc.tools.importer.manifests import ImportNote, ImportResult, facts


def import_dgd(files: Sequence[str | Path], base_dir: Path | None = None) -> ImportResult:
    """The spec for the DGD in ``files``, validated; every setting it cannot carry is a warning."""
    sources = read_sources(files)
    importer = SpecBuilder(sources)
    spec = _tidy(importer.run())
    spec, dropped = _validated(spec, importer, base_dir or Path.cwd())
    notes = tuple(importer.notes) + tuple(dropped)
    return ImportResult(spec, spec_text(spec, notes, files), notes, facts(sources))


POOL_ORDER = ("replicas", "tensor_parallel", "pipeline_parallel", "expert_parallel", "moe_tensor_parallel")
POOL_DEFAULTS = {"pipeline_parallel": 1, "attention_dp": False}


def _tidy(spec: dict) -> dict:
    """The spec as a person would write it: pool keys in the usual order, default values left out."""
    for role, pool in spec["pools"].items():
        ordered = {k: pool[k] for k in POOL_ORDER if k in pool}
        ordered.update({k: v for k, v in pool.items() if k not in ordered})
        spec["pools"][role] = {k: v for k, v in ordered.items() if POOL_DEFAULTS.get(k, object()) != v}
    model = spec["model"]
    if "served_name" in model and model.get("served_name") == model.get("path"):
        model.pop("served_name")
    order = ("apiVersion", "name", "namespace", "dynamo", "model", "image", "cluster", "router", "migration")
    return {**{k: spec[k] for k in order if k in spec}, **{k: v for k, v in spec.items() if k not in order}}


def _validated(spec: dict, importer: SpecBuilder, base_dir: Path) -> tuple[dict, list[ImportNote]]:
    """Check the spec with dyncc's own pipeline. An engine.extra key dyncc refuses is dropped with a warning;
    a placement that does not fit gets the roomier cluster; anything else is an error of the import."""
    dropped: list[ImportNote] = []
    for _ in range(50):  # each round drops at least one key
        errors, added_events = _check(spec, base_dir)
        if not errors:
            return spec, dropped + [_kv_events_note(role) for role in added_events]
        engine_errors = [(d, found) for d in errors if (found := _engine_key(d.path, importer)) is not None]
        if engine_errors:
            for d, (role, below, key) in engine_errors:
                _drop(spec["pools"][role]["engine"], below)
                dropped.append(
                    ImportNote(
                        Diagnostic(
                            "DYN961",
                            f"engine key {key} of the {role} pool is refused by dyncc ({d.code}: {d.message}); dropped",
                            path=("pools", role, "engine", *below),
                            hint=d.hint,
                            severity="warning",
                        ),
                        ((role, "engine", key), (role, "engine", f"{key}.*")),
                    )
                )
            continue
        if any(d.code in ("DYN403", "DYN405") for d in errors) and spec["cluster"]["nodes"] < importer.worst_case_nodes:
            spec["cluster"]["nodes"] = importer.worst_case_nodes
            continue
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN969",
                    f"the imported spec is not valid: {d.code} {d.message}",
                    path=d.path,
                    hint=d.hint,
                )
                for d in errors
            ]
        )
    raise DiagnosticError([Diagnostic("DYN969", "the imported spec could not be made valid")])


def _check(spec: dict, base_dir: Path) -> tuple[list[Diagnostic], list[str]]:
    """The spec's errors by dyncc's own pipeline, and (when none) the pools dyncc turns KV events on for that
    did not publish them (the KV router needs them: a flag the rebuilt DGD adds)."""
    from dyncc.compiler import check_spec
    from dyncc.compiler.graph import pools
    from dyncc.deployment import load_spec_text

    text = yaml.safe_dump(spec, sort_keys=False)
    try:
        loaded = load_spec_text(text, "<imported>", base_dir)
    except DiagnosticError as exc:
        return [d for d in exc.diagnostics if d.is_error], []
    graph, _, diagnostics = check_spec(loaded)
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        return errors, []
    added: list[str] = [
        p.role for p in pools(graph) if p.publish_kv_events and not spec["pools"][p.role].get("publish_kv_events")
    ]
    return [], added


def _kv_events_note(role: str) -> ImportNote:
    flags = ("--publish-kv-events", "--publish-events-and-metrics")
    return ImportNote(
        Diagnostic(
            "DYN964",
            f"the {role} workers did not publish KV events; the KV router needs them, so dyncc adds the flag",
            path=("pools", role),
            hint="nothing to do: without the events the KV router routes blind",
            severity="warning",
        ),
        tuple((role, "flag", f) for f in flags),
    )


def _engine_key(path: YamlPath, importer: SpecBuilder) -> tuple[str, tuple[str, ...], str] | None:
    """(role, the spec path below the pool's engine, the engine-config key) of an error in imported engine values."""
    if len(path) < 4 or path[0] != "pools" or path[2] != "engine" or str(path[1]) not in importer.engines:
        return None
    role = str(path[1])
    below = tuple(str(p) for p in path[3:])
    if below[0] == "extra" and len(below) > 1:
        return role, below, ".".join(below[1:])
    # The spec's engine fields, by the engine-config key the import took each from.
    field_keys = importer.engines[role].config_impl().READING.field_keys
    if below[0] in field_keys:
        return role, below[:1], field_keys[below[0]]
    return None


def _drop(engine: dict, below: tuple[str, ...]) -> None:
    node = engine
    for part in below[:-1]:
        node = node.get(part, {})
    node.pop(below[-1], None)


def spec_text(spec: dict, notes: Sequence[ImportNote], files: Sequence[str | Path]) -> str:
    """The spec as YAML, headed by what the import could not carry (the same list the CLI prints).

    Everything taken from the manifests is data: values are written by the YAML dumper (quoted and escaped
    as needed, non-ASCII and control characters as escapes), and the comment lines that name flags, files
    and components hold them on one line, escaped (:func:`comment_text`). The text is then read back: it
    must hold exactly ``spec``, or the import fails (DYN969) rather than write anything else."""
    header = [f"# Imported by `dyncc import` from {comment_text(', '.join(str(f) for f in files))}."]
    if notes:
        header.append("# Not carried over (review these):")
        header += [f"#   {n.diagnostic.code}: {comment_text(n.diagnostic.message)}" for n in notes]
    body = yaml.safe_dump(spec, sort_keys=False, width=120, allow_unicode=False)
    text = "\n".join(header) + "\n" + body
    _holds_exactly(text, spec)
    return text


# Line breaks in YAML 1.2 (LF, CR) and in YAML 1.1 readers such as PyYAML (NEL, LS, PS); any of them in a
# comment would end it and start a line of YAML.
_LINE_BREAKS = {"\n": "\\n", "\r": "\\r", "\x85": "\\x85", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def comment_text(text: str) -> str:
    """``text`` as the inside of a one-line comment: line breaks and control characters escaped, and
    non-ASCII characters too (so no reader, whatever the YAML version or terminal, sees a break or an
    escape sequence)."""
    escaped = "".join(_LINE_BREAKS.get(ch, ch) for ch in printable(text))
    return escaped.encode("ascii", "backslashreplace").decode("ascii")


def _holds_exactly(text: str, spec: dict) -> None:
    """The imported spec's text, read back as dyncc reads a spec, is ``spec`` itself: no comment became a
    key, no value changed type on the way."""
    from dyncc.spec.input_gate import load_yaml_data

    data, _ = load_yaml_data(text, "<imported>")
    if _canonical(data) != _canonical(spec):
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN969",
                    "the imported spec's text does not read back as the values imported; nothing is written",
                    hint="report this with the manifests: the spec dyncc writes must hold only the manifest's values",
                )
            ]
        )


def _canonical(value: Any) -> str:
    # JSON text compares NaN equal to itself, and dates as their text.
    return json.dumps(value, sort_keys=True, default=str)
