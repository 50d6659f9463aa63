"""Spec forms that validated in an earlier dyncc and have a new spelling under the same ``apiVersion``.

A committed spec is a contract: an old form keeps validating, read as its new form, with a warning that
names the new form (DYN021); ``dyncc migrate`` writes the new form into the file. Each entry says where the
value lived, where it lives now and the release that moved it; the CHANGELOG lists the same moves.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from dyncc.diagnostics import Diagnostic, YamlPath, format_yaml_path


class MovedKey(msgspec.Struct, frozen=True):
    old: tuple[str, ...]
    new: tuple[str, ...]
    since: str  # the dyncc change that moved it, as the CHANGELOG names it
    # How an old value reads in the new place (None: as it is).
    values: dict[Any, Any] | None = None


# The mock engine switch was a setting of two targets (local.engine, slurm.engine); it is one top-level
# setting now, because every target must run the same workers.
MOVED_KEYS: tuple[MovedKey, ...] = (
    MovedKey(
        ("local", "engine"), ("worker_runtime",), "after 0.1.0, when one worker_runtime came to serve every target"
    ),
    MovedKey(
        ("slurm", "engine"), ("worker_runtime",), "after 0.1.0, when one worker_runtime came to serve every target"
    ),
    MovedKey(("local", "mocker_speedup_ratio"), ("mocker_speedup_ratio",), "after 0.1.0, with worker_runtime"),
    MovedKey(("slurm", "mocker_speedup_ratio"), ("mocker_speedup_ratio",), "after 0.1.0, with worker_runtime"),
)


class Upgrade(msgspec.Struct, frozen=True):
    """The document in the current form, what was rewritten (``moves``: old path -> new path) and the
    diagnostics: a DYN021 warning per old form read, a DYN022 error where two old forms disagree."""

    data: Any
    moves: tuple[tuple[YamlPath, YamlPath], ...]
    diagnostics: tuple[Diagnostic, ...]


def _get(node: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def upgrade(data: Any) -> Upgrade:
    """``data`` (plain YAML data) with every old form moved to its new place. Never raises."""
    if not isinstance(data, dict):
        return Upgrade(data, (), ())
    moved = [m for m in MOVED_KEYS if _get(data, m.old)[0]]
    if not moved:
        return Upgrade(data, (), ())
    out = copy.deepcopy(data)
    found: list[Diagnostic] = []
    moves: list[tuple[YamlPath, YamlPath]] = []
    written: dict[tuple[str, ...], tuple[tuple[str, ...], Any]] = {}  # new path -> (where from, value)
    for move in moved:
        value = _get(data, move.old)[1]
        section = out[move.old[0]]
        del section[move.old[-1]]
        if not section:  # `local: {engine: mocker}` leaves an empty section: drop it, as if never written
            del out[move.old[0]]
        new_value = move.values.get(value, value) if move.values else value
        has_new, current = _get(data, move.new)
        earlier = written.get(move.new)
        if (has_new and current != new_value) or (earlier is not None and earlier[1] != new_value):
            other = move.new if has_new and current != new_value else earlier[0]  # type: ignore[index]
            found.append(
                Diagnostic(
                    "DYN022",
                    f"{format_yaml_path(move.old)}: {new_value!r:.60} and {format_yaml_path(other)} disagree; "
                    f"both are now the one setting `{format_yaml_path(move.new)}`",
                    path=move.old,
                    hint=f"keep one: `{format_yaml_path(move.new)}: ...` at the top level (and `--engine` on the "
                    "command line to run one target with another engine)",
                )
            )
            continue
        written[move.new] = (move.old, new_value)
        node = out
        for part in move.new[:-1]:
            node = node.setdefault(part, {})
        node[move.new[-1]] = new_value
        moves.append((move.old, move.new))
        found.append(
            Diagnostic(
                "DYN021",
                f"`{format_yaml_path(move.old)}` is an old form (moved {move.since}); "
                f"read as `{format_yaml_path(move.new)}: {new_value}`",
                path=move.old,
                hint=f"write `{format_yaml_path(move.new)}: {new_value}` instead, or run `dyncc migrate` on the file",
                severity="warning",
            )
        )
    return Upgrade(out, tuple(moves), tuple(found))
