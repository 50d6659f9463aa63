"""Dynamo releases as data: one file per release (``data/dynamo-<version>.json``, written by
``scripts/gen_releases.py`` from the release wheels' own parsers), read here into typed records.

A release file names the engine versions the release pins (by engine name) and every flag its engine worker,
frontend and mock engine accept (aliases, kind, choices, deprecation), plus the few documented facts no parser
shows.
Adding a release is adding its file: nothing in dyncc names a release, and :func:`release` accepts any
version that has one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

import msgspec
from packaging.version import Version

Component = Literal["worker", "frontend", "mocker"]
COMPONENTS: tuple[Component, ...] = ("worker", "frontend", "mocker")
# argparse actions that take no value on the command line.
_NO_VALUE = ("store_true", "store_false", "store_const", "count", "bool(--x/--no-x)")


class Flag(msgspec.Struct, frozen=True):
    name: str
    kind: str = ""  # "" takes a value; store_true, bool(--x/--no-x) (BooleanOptionalAction), append, ...
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None
    nargs: str | int | None = None
    default: Any = None
    deprecated: str | None = None  # the parser's own deprecation text
    deprecated_alias: str | None = None  # an alias the release calls deprecating

    @property
    def takes_value(self) -> bool:
        return self.kind not in _NO_VALUE

    def option_strings(self) -> tuple[str, ...]:
        names = (self.name, *self.aliases)
        if self.kind == "bool(--x/--no-x)":  # BooleanOptionalAction: --no-<flag> for every long name
            names += tuple("--no-" + n.removeprefix("--") for n in names if not n.startswith("--no-"))
        return names


class Refusal(msgspec.Struct, frozen=True):
    """One thing a release's parser would refuse in a command line."""

    option: str  # the option it is about ("" for a stray word)
    kind: Literal["unknown", "value", "arity", "stray"]  # no such flag / a value outside its choices / ...
    message: str


class Release(msgspec.Struct, frozen=True, eq=False, dict=True):
    """One Dynamo release's data, identified by its version: compared and hashed by it (its flags are maps,
    and a copy of a profile or a plan must still equal the original); ``dict`` holds its option index."""

    dynamo: str
    pins: Mapping[str, str]  # engine name -> the version its wheel pins (`Requires-Dist: <engine>==X`)
    flags: Mapping[Component, Mapping[str, Flag]]
    documented: Mapping[str, Any]  # facts no parser shows: {name: value}
    constants: Mapping[str, Any] = msgspec.field(default_factory=dict)  # parser module defaults

    def __repr__(self) -> str:  # its flags run to thousands of lines
        return f"Release(dynamo={self.dynamo!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Release) and other.dynamo == self.dynamo

    def __hash__(self) -> int:
        return hash(self.dynamo)

    @property
    def version(self) -> Version:
        return Version(self.dynamo)

    @functools.cached_property
    def _options(self) -> dict[Component, dict[str, Flag]]:
        return {c: {o: f for f in self.flags[c].values() for o in f.option_strings()} for c in COMPONENTS}

    def option(self, component: Component, option: str) -> Flag | None:
        """The flag an option string (a name, an alias or a --no- form) belongs to."""
        return self._options[component].get(option)

    def has(self, component: Component, option: str) -> bool:
        return option in self._options[component]

    def accepts(self, component: Component, option: str, value: str | None = None) -> bool:
        """Whether ``component``'s parser has ``option`` (and takes ``value`` for it, when given)."""
        flag = self.option(component, option)
        return flag is not None and (value is None or flag.choices is None or value in flag.choices)

    def choices(self, component: Component, option: str) -> tuple[str, ...]:
        flag = self.option(component, option)
        return () if flag is None or flag.choices is None else flag.choices

    def argv_problems(self, component: Component, argv: list[str]) -> list[str]:
        """What this release's parser of ``component`` would refuse in ``argv``, said in words."""
        return [refusal.message for refusal in self.refusals(component, argv)]

    def refusals(self, component: Component, argv: list[str]) -> list[Refusal]:
        """What this release's parser of ``component`` would refuse in ``argv`` (dyncc writes every option
        in full, `--flag value` or `--flag=value`; nothing positional)."""
        problems: list[Refusal] = []
        i = 0
        while i < len(argv):
            word = argv[i]
            i += 1
            if not word.startswith("--"):
                problems.append(Refusal("", "stray", f"unexpected argument {word!r}"))
                continue
            option, eq, inline = word.partition("=")
            flag = self.option(component, option)
            if flag is None:
                problems.append(
                    Refusal(option, "unknown", f"{option} is not a flag of Dynamo {self.dynamo}'s {component}")
                )
                continue
            if not flag.takes_value:
                if eq:
                    problems.append(Refusal(option, "arity", f"{option} takes no value"))
                continue
            if eq:
                values = [inline]
            elif flag.nargs in ("*", "+"):
                values = []
                while i < len(argv) and not argv[i].startswith("--"):
                    values.append(argv[i])
                    i += 1
            elif i < len(argv):
                values = [argv[i]]
                i += 1
            else:
                values = []
            if not values and flag.nargs not in ("*", "?"):
                problems.append(Refusal(option, "arity", f"{option} needs a value"))
            for value in values:
                if flag.choices is not None and value not in flag.choices:
                    message = f"{option} {value!r} is not one of {', '.join(flag.choices)}"
                    problems.append(Refusal(option, "value", message))
        return problems

    def deprecated_in(self, component: Component, argv: list[str]) -> list[str]:
        """Options in ``argv`` this release marks deprecated (the flag, or the alias used)."""
        found = []
        for word in argv:
            option = word.partition("=")[0]
            flag = self.option(component, option) if option.startswith("--") else None
            if flag is None:
                continue
            if flag.deprecated:
                found.append(f"{option}: {flag.deprecated}")
            elif flag.deprecated_alias is not None and option.removeprefix("--no-") in {
                flag.deprecated_alias.removeprefix("--"),
                flag.deprecated_alias,
            }:
                found.append(f"{option}: a deprecated alias of {flag.name}")
        return found


def _flag(name: str, facts: Mapping[str, Any]) -> Flag:
    choices = facts.get("choices")
    return Flag(
        name=name,
        kind=facts.get("kind", ""),
        aliases=tuple(facts.get("aliases", ())),
        choices=None if choices is None else tuple(str(c) for c in choices),
        nargs=facts.get("nargs"),
        default=facts.get("default"),
        deprecated=facts.get("deprecated"),
        deprecated_alias=facts.get("deprecated_alias"),
    )


def version_or_none(name: str) -> Version | None:
    """``name`` as a PEP 440 version, or None when it is not one. ValueError, not only InvalidVersion: a
    release segment of more than 4,300 digits is refused by int() itself (a spec can say anything)."""
    try:
        return Version(name)
    except ValueError:
        return None


def _data_dir() -> Traversable:
    return resources.files(__package__).joinpath("data")


@functools.cache
def releases() -> tuple[Release, ...]:
    """Every release dyncc has a file for, oldest first."""
    folder = _data_dir()
    found = [_read(e) for e in folder.iterdir() if e.name.startswith("dynamo-") and e.name.endswith(".json")]
    return tuple(sorted(found, key=lambda r: r.version))


def _read(entry: Traversable) -> Release:
    """One release file, read once: :func:`release` and :func:`releases` give the same object."""
    if str(entry) not in _READ:
        data = json.loads(entry.read_text("utf-8"))
        flags = {c: {n: _flag(n, f) for n, f in data[c].items()} for c in COMPONENTS}
        documented = {k: v["value"] for k, v in data.get("documented", {}).items()}
        _READ[str(entry)] = Release(data["dynamo"], _pins(data), flags, documented, data.get("constants", {}))
    return _READ[str(entry)]


_READ: dict[str, Release] = {}


def _pins(data: Mapping[str, Any]) -> dict[str, str]:
    """The engine versions a release file names: every other top-level string but its own version and source."""
    return {k: v for k, v in data.items() if isinstance(v, str) and k not in _NOT_PINS}


_NOT_PINS = ("dynamo", "source")


def release(version: str) -> Release | None:
    """The release of exactly this version (no version is guessed from another)."""
    if version_or_none(version) is None:  # only a version names a file: never a path built from other text
        return None
    own = _data_dir().joinpath(f"dynamo-{version}.json")
    if own.is_file() and _read(own).dynamo == version:
        return _read(own)  # its file alone: a build needs one release, and reading every file took 30 ms
    return next((r for r in releases() if r.dynamo == version), None)


def newest() -> Release:
    return releases()[-1]


def first_with(component: Component, option: str, value: str | None = None) -> Release | None:
    """The oldest release whose ``component`` has ``option`` (accepting ``value``, when given)."""
    return next((r for r in releases() if r.accepts(component, option, value)), None)


def last_with(component: Component, option: str, value: str | None = None) -> Release | None:
    """The newest release whose ``component`` has ``option`` (accepting ``value``, when given)."""
    return next((r for r in reversed(releases()) if r.accepts(component, option, value)), None)


def availability(component: Component, option: str, deployed: str, value: str | None = None) -> tuple[str, str]:
    """(when the release line had ``option``, what to deploy instead), for a message about ``deployed``: the
    first release that has it after the deployed one, else the last before it that had it."""
    first = first_with(component, option, value)
    last = last_with(component, option, value)
    if first is not None and sorts_before(deployed, first.dynamo):
        return f"it came with Dynamo {first.dynamo}", f"deploy Dynamo {first.dynamo} or later"
    if last is not None:
        return f"Dynamo {last.dynamo} was the last release with it", f"deploy a release up to Dynamo {last.dynamo}"
    return "no release dyncc knows has it", ""


def sorts_before(a: str, b: str) -> bool:
    """Whether release ``a`` comes before ``b`` (PEP 440 order); unknown spellings sort nowhere."""
    va, vb = version_or_none(a), version_or_none(b)
    return va is not None and vb is not None and va < vb
