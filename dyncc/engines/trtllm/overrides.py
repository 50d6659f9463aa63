"""Engine keys TensorRT-LLM writes over one another, per version, and what an engine YAML finally means.

TensorRT-LLM's validators copy some keys over others without an error: in 1.1.0rc5 (and 1.2.x, 1.3.0rc11,
rc14) MTP's ``num_nextn_predict_layers`` (default 1) is copied over ``max_draft_len``, so a YAML that says
``max_draft_len: 3`` drafts one token; from 1.3.0rc22 ``num_nextn_predict_layers`` is a deprecated alias read
into ``max_draft_len`` and dropped when both are given. Each key-set file lists these pairs under
``overrides`` (transcribed from the reference's field_notes), one object each:

``key``        the key whose value ends up in the other one
``overrides``  the key that loses its value
``how``        ``always``: ``key``'s value, or its ``default`` when unset, replaces ``overrides``'s;
               ``when_set``: ``key``'s value replaces ``overrides``'s when ``key`` is set;
               ``alias``: ``overrides`` is a deprecated spelling of ``key``, read into it when ``key`` is
               unset and dropped when it is set
``when``       optional: the pair applies only when these keys hold one of the listed values
``fact``       where the behaviour was read

:func:`effective_value` applies a version's pairs to an engine config (the test that the MTP depth holds
reads it); :func:`lost_values` names each value a config sets that the version would overwrite or drop.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import msgspec

from dyncc.engines.trtllm.keys import accepted_keys

How = Literal["always", "when_set", "alias"]


class Override(msgspec.Struct, frozen=True):
    key: str
    overrides: str
    how: How
    default: Any = None
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    fact: str = ""


class LostValue(msgspec.Struct, frozen=True):
    """A value an engine config sets that TensorRT-LLM replaces (``kind`` overwritten or dropped) or reads
    under its new name (``kind`` deprecated: the value holds, the spelling is deprecated)."""

    pair: Override
    value: Any  # what the config sets for pair.overrides
    kept: Any  # what the engine uses instead (pair.key's value, or its default)
    kind: Literal["overwritten", "dropped", "deprecated"]


_UNSET = object()


@functools.lru_cache(maxsize=16)
def overrides(version: str) -> tuple[Override, ...]:
    """The pairs of ``version``'s key set (none when the file declares none)."""
    pairs = []
    for entry in accepted_keys(version).get("overrides", []):
        when = tuple((k, tuple(v)) for k, v in entry.get("when", {}).items())
        pairs.append(
            Override(entry["key"], entry["overrides"], entry["how"], entry.get("default"), when, entry.get("fact", ""))
        )
    return tuple(pairs)


def lookup(config: dict[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` in a nested engine config; a module-private sentinel when absent."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _UNSET
        node = node[part]
    return node


def is_set(value: Any) -> bool:
    # TensorRT-LLM's validators treat an explicit null as unset (Optional fields, "when not None").
    return value is not _UNSET and value is not None


def _applies(pair: Override, config: dict[str, Any]) -> bool:
    return all(lookup(config, key) in values for key, values in pair.when)


def effective_value(config: dict[str, Any], dotted: str, version: str) -> Any:
    """What TensorRT-LLM ``version`` ends up with for ``dotted`` once its validators ran over ``config``
    (None when neither the key nor a key that writes it is set)."""
    value = lookup(config, dotted)
    for pair in overrides(version):
        if not _applies(pair, config):
            continue
        winner = lookup(config, pair.key)
        if pair.overrides == dotted and pair.how == "always":
            value = winner if is_set(winner) else pair.default
        elif pair.overrides == dotted and pair.how == "when_set" and is_set(winner):
            value = winner
        elif pair.key == dotted and pair.how == "alias" and not is_set(value):
            value = lookup(config, pair.overrides)
        elif pair.overrides == dotted and pair.how == "alias":
            value = _UNSET  # read into pair.key (or dropped): the engine keeps no value under this name
    return value if is_set(value) else None


def lost_values(config: dict[str, Any], version: str) -> list[LostValue]:
    """Each value ``config`` sets that TensorRT-LLM ``version`` overwrites, drops or reads under another name."""
    lost = []
    for pair in overrides(version):
        value = lookup(config, pair.overrides)
        if not is_set(value) or not _applies(pair, config):
            continue
        winner = lookup(config, pair.key)
        if pair.how == "always":
            kept = winner if is_set(winner) else pair.default
            if kept != value:
                lost.append(LostValue(pair, value, kept, "overwritten"))
        elif pair.how == "when_set":
            if is_set(winner) and winner != value:
                lost.append(LostValue(pair, value, winner, "overwritten"))
        elif is_set(winner) and winner != value:
            lost.append(LostValue(pair, value, winner, "dropped"))
        else:
            lost.append(LostValue(pair, value, value, "deprecated"))
    return lost


def losing_keys(version: str, config: dict[str, Any]) -> set[str]:
    """Keys ``version`` would overwrite or read under another name in ``config``: never dyncc's own spelling."""
    return {pair.overrides for pair in overrides(version) if _applies(pair, config)}
