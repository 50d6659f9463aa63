"""`dyncc migrate`: a spec rewritten in the current form, or for another Dynamo release; comments and order kept.

Old forms: the loader already reads them (``dyncc.spec.deprecations``); this writes the same moves into the
text, so the file stops warning.

Another release (``to``): ``dynamo.version`` is set, then the spec is checked for that release, and each
finding the release brings (a diagnostic the spec did not have at its own version) whose setting has an
honest rewrite is rewritten: going up, a setting the release dropped (the worker-side disaggregation
strategy, whose order the frontend now drives; the router state reset, when the router keeps no state); in
either direction, an engine version pin that is not the release's and an image tagged with the old release;
going down, `request_plane: nats` where the release has only NATS. What the release refuses and nothing
rewrites (a feature it lacks, or going down may not have had yet; an engine key the release's engine does not
take) is returned as ``refused``, and nothing is written. No release is named here: the rules and profiles
decide what a release refuses, and their messages say why, so a new release file needs no change here.

The result is validated before it is returned: migrate never hands back a spec that does not load (and,
migrating to a release, never one with an error).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from dyncc.deployment import load_spec_text
from dyncc.diagnostics import Diagnostic, DiagnosticError, YamlPath, format_yaml_path
from dyncc.engines import engines
from dyncc.releases import version_or_none
from dyncc.spec import LoadedSpec
from dyncc.spec.deprecations import upgrade
from dyncc.spec.loader import SourceMap, parse_yaml, read_spec_bytes

VERSION_PATH: YamlPath = ("dynamo", "version")


class Migration(msgspec.Struct, frozen=True):
    text: str  # the migrated spec (the input unchanged when nothing moved)
    changes: tuple[str, ...]  # one line per rewrite, for people: path, old -> new, why
    diagnostics: tuple[Diagnostic, ...]  # what the migrated spec still warns about
    # Migrating to a release: the errors left, located in the input file. ``refused``: what the release
    # refuses and nothing rewrites; ``invalid``: errors the spec has at its own version too. Either one
    # means ``text`` must not be written.
    refused: tuple[Diagnostic, ...] = ()
    invalid: tuple[Diagnostic, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.refused and not self.invalid


def migrate_file(path: str | Path, to: str | None = None) -> Migration:
    """The spec at ``path`` in the current form, and with ``to``, rewritten for that Dynamo release. Raises
    :class:`DiagnosticError` when it cannot be read, parsed or loaded, when its old forms disagree (DYN022),
    or when ``to`` is not a version (DYN013); what the release refuses comes back in the result."""
    path = Path(path)
    return migrate_text(read_spec_bytes(path), str(path), path.parent, to)


def migrate_text(raw: bytes | str, file: str, base_dir: Path, to: str | None = None) -> Migration:
    """:func:`migrate_file` on a spec's text; ``file`` names it in diagnostics, and the files the spec names
    (engine configs, chat templates) are found under ``base_dir``."""
    raw = raw.encode("utf-8") if isinstance(raw, str) else raw
    tree = parse_yaml(raw, file)
    if not isinstance(tree, CommentedMap):
        load_spec_text(raw, file, base_dir=base_dir)  # raises the loader's own DYN003
    moved = _move_old_forms(tree, file)
    changes = [change for _, _, change in moved]
    text = raw.decode("utf-8") if not changes else _dump(tree, raw)
    loaded = load_spec_text(text, file, base_dir=base_dir)  # the result must load
    if to is None:
        return Migration(text, tuple(changes), loaded.notices)
    source = _OriginalSource(SourceMap(file, parse_yaml(raw, file)), {new: old for old, new, _ in moved})
    return _to_release(tree, text, loaded, source, to, changes)


def _move_old_forms(tree: CommentedMap, file: str) -> list[tuple[YamlPath, YamlPath, str]]:
    """Each old form written in its new place: (old path, new path, the change line)."""
    upgraded = upgrade(tree)
    errors = [d for d in upgraded.diagnostics if d.is_error]
    if errors:
        source = SourceMap(file, tree)
        raise DiagnosticError([d.located(source.locate(d.path, at_key=True)) for d in errors])
    moved = []
    for old, new in upgraded.moves:
        value = _pop(tree, old)
        _put(tree, new, value)
        change = f"{format_yaml_path(old)} -> {format_yaml_path(new)}: {_shown(value)} (the old form of the setting)"
        moved.append((old, new, change))
    return moved


# --- another release --------------------------------------------------------------------------------------


class _OriginalSource(msgspec.Struct, frozen=True):
    """Locates a finding in the file the user has: a setting moved from an old form at its old place."""

    source: SourceMap
    moved_from: dict[YamlPath, YamlPath]

    def locate(self, finding: Diagnostic) -> Diagnostic:
        path = self.moved_from.get(finding.path, finding.path)
        return msgspec.structs.replace(finding, location=self.source.locate(path))


class Step(msgspec.Struct, frozen=True):
    """The release migrated from and to, as ``dynamo.version`` says them."""

    old: str
    new: str

    @property
    def upgrade(self) -> bool:
        """The release migrated to comes after the one migrated from (PEP 440 order); False when either is
        not a version that order knows."""
        new, old = version_or_none(self.new), version_or_none(self.old)
        return new is not None and old is not None and new > old


# A rewrite of the setting at a diagnostic's path: the change line (path, old -> new, why), or None when
# this spec's value has no honest rewrite (the finding is then refused).
Rewrite = Callable[[CommentedMap, Diagnostic, Step], "str | None"]


def _remove(tree: CommentedMap, finding: Diagnostic, step: Step) -> str | None:
    """The setting goes: the release has no such setting, and without it does what the finding says."""
    return _pop_change(tree, finding)


def _remove_dropped(tree: CommentedMap, finding: Diagnostic, step: Step) -> str | None:
    """A setting a later release dropped goes on the way up (the release does without it what the finding
    says). On the way down it is a feature the older release may not have had yet: refused."""
    return _pop_change(tree, finding) if step.upgrade else None


def _pop_change(tree: CommentedMap, finding: Diagnostic) -> str | None:
    try:
        value = _pop(tree, finding.path)
    except (KeyError, TypeError):  # not written in this file (a merge key's, or set by the loader)
        return None
    return f"{format_yaml_path(finding.path)}: {_shown(value)} -> removed ({finding.code}: {finding.message})"


def _remove_nats_plane(tree: CommentedMap, finding: Diagnostic, step: Step) -> str | None:
    """A release without `--request-plane` sends requests over NATS: `request_plane: nats` says what it does
    anyway, any other plane is a behaviour it lacks."""
    return _remove(tree, finding, step) if tree.get("request_plane") == "nats" else None


def _retag_image(tree: CommentedMap, finding: Diagnostic, step: Step) -> str | None:
    """An image tagged with the release migrated from becomes the same image tagged with the new one (the
    prefix and variant suffix kept: `vX.Y.Z-arm64` -> `vA.B.C-arm64`). A digest pins the old image's bytes,
    and an image already tagged with a third release is the user's choice: both stay, and stay warned."""
    from dyncc.compiler.rules.versions import TAG_VERSION, image_tag, release_of

    image = tree.get("image")
    tag = image_tag(image) if isinstance(image, str) and "@" not in image else None
    match = TAG_VERSION.match(tag) if tag else None
    if tag is None or match is None or release_of(tag) != release_of(step.old):
        return None
    new_tag = tag[: match.start("release")] + step.new + tag[match.end("post") :]
    new_image = image[: len(image) - len(tag)] + new_tag
    tree["image"] = new_image
    return f"image: {image} -> {new_image} ({finding.code}: {finding.message})"


# Keyed by the path of the finding: the rules name what a release refuses (and the code may be refined), the
# setting that has an honest rewrite stays where it is.
REWRITES: dict[YamlPath, Rewrite] = {
    # `dynamo.<engine>`: a pin of the engine whose configs are written other than the release's own, which
    # the version implies.
    **{("dynamo", e.name): _remove for e in engines() if e.configures},
    ("router", "disaggregation_strategy"): _remove_dropped,
    ("router", "reset_states"): _remove_dropped,
    ("request_plane",): _remove_nats_plane,
    ("image",): _retag_image,
}


def _to_release(
    tree: CommentedMap, text: str, loaded: LoadedSpec, source: _OriginalSource, to: str, changes: list[str]
) -> Migration:
    from dyncc.api import validate_text, with_dynamo_version

    with_dynamo_version(loaded, to)  # DYN013 when `to` is not a version
    file, base_dir = loaded.source.file, loaded.base_dir
    step = Step(loaded.spec.dynamo.version, to)
    # What the spec already has at its own version is not the new release's doing: never rewritten for it.
    known = {(d.code, d.path) for d in validate_text(text, file, base_dir).diagnostics}
    if step.old != step.new:
        _set_version(tree, to)
        changes.append(f"dynamo.version: {step.old} -> {to} (the release deployed)")
    layout = text  # the input's layout, which each dump keeps
    done: set[YamlPath] = set()
    rewritten: dict[tuple[str, YamlPath], str] = {}  # (code, path) of a finding -> its change line
    found: tuple[Diagnostic, ...] = ()
    # Each rewrite can be due once; a rewrite can bring a finding of its own, so check again after each
    # round (at most one round per rewrite, and one to see the result).
    for _ in range(len(REWRITES) + 1):
        text = _dump(tree, layout) if changes or rewritten else text
        found = validate_text(text, file, base_dir).diagnostics
        due = [d for d in found if d.path in REWRITES and d.path not in done and (d.code, d.path) not in known]
        if not due:
            break
        for finding in due:
            done.add(finding.path)
            change = REWRITES[finding.path](tree, finding, step)
            if change is not None:
                rewritten[(finding.code, finding.path)] = change
    # A rewrite that did not take (a key merged in from an anchor comes back on reading) is no change: its
    # finding is still there, refused below.
    remaining = {(d.code, d.path) for d in found}
    changes += [change for finding, change in rewritten.items() if finding not in remaining]
    # Errors point into the file the user has; one each (several targets can refuse a setting alike).
    errors = list({(d.code, d.path, d.message): source.locate(d) for d in found if d.is_error}.values())
    return Migration(
        text,
        tuple(changes),
        tuple(d for d in found if d.severity == "warning"),
        refused=tuple(d for d in errors if (d.code, d.path) not in known),
        invalid=tuple(d for d in errors if (d.code, d.path) in known),
    )


def _set_version(tree: CommentedMap, version: str) -> None:
    section = tree.get("dynamo")
    if isinstance(section, CommentedMap):
        section["version"] = version
        return
    # No `dynamo:` section (the default release): one is written beside the spec's name.
    where = list(tree).index("name") + 1 if "name" in tree else len(tree)
    tree.insert(where, "dynamo", CommentedMap([("version", version)]))


def _shown(value: Any) -> str:
    """A value as the spec writes it (`true`, not `True`), shortened: a change line is one line."""
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


# --- the tree ---------------------------------------------------------------------------------------------


def _pop(tree: CommentedMap, path: YamlPath) -> Any:
    """Remove the value at ``path``; a section left empty goes too (as if it had never been written)."""
    parents = [tree]
    for part in path[:-1]:
        parents.append(parents[-1][part])
    value = parents[-1].pop(path[-1])
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth]:
            break
        del parents[depth - 1][path[depth - 1]]
    return value


def _put(tree: CommentedMap, path: YamlPath, value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, CommentedMap())
    node[path[-1]] = value


# The block-sequence layouts a spec is written in: (sequence indent, dash offset).
SEQUENCE_LAYOUTS = ((2, 0), (4, 2))


def _dump(tree: CommentedMap, raw: bytes | str) -> str:
    """The tree as YAML in the input's layout: quotes kept, and the sequence indentation of the two common
    styles that reproduces more of the input's lines (ruamel does not keep it by itself)."""
    original = set((raw.decode("utf-8") if isinstance(raw, bytes) else raw).splitlines())
    best = ""
    best_kept = -1
    for sequence, offset in SEQUENCE_LAYOUTS:
        yaml = YAML(typ="rt")
        yaml.width = 4096  # never fold a long line the input kept on one
        yaml.preserve_quotes = True
        yaml.indent(mapping=2, sequence=sequence, offset=offset)
        stream = io.StringIO()
        yaml.dump(tree, stream)
        text = stream.getvalue()
        kept = sum(line in original for line in text.splitlines())
        if kept > best_kept:
            best, best_kept = text, kept
    return best
