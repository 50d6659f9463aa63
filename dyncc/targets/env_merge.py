"""One environment per process from two sources, each name once: what dyncc writes, and what the spec gives.

dyncc writes some variables itself (a k8s worker's HF_HOME where ``k8s.model_cache`` is mounted, a compose
worker's DYN_SYSTEM_PORT and discovery, the OMPI_* switches of a worker spanning nodes); the spec gives its
own (``pools.<role>.env``, a target's env settings). Where both name one variable it is written once:

- the same value: once, nothing to say (a manifest imported by ``dyncc import`` often repeats dyncc's);
- another value for a variable something else dyncc writes relies on (the cache mount, the health check,
  discovery): DYN525, an error; the deployment would start and not work, or not as the spec says;
- another value for one nothing relies on: the spec's, said by the warning DYN526.

Two entries of one name are never written: Kubernetes' server-side apply refuses them (env is a list-map
keyed by name), client-side apply silently keeps the last, and ``env A=1 A=2`` the last as well.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Sequence

import msgspec

from dyncc.diagnostics import Diagnostic, YamlPath, format_yaml_path


class Written(msgspec.Struct, frozen=True):
    """A variable dyncc writes into a process's environment."""

    name: str
    value: str
    why: str  # what dyncc sets it for, said in the diagnostic
    relied_on: bool = True  # something else dyncc writes needs this value (another one is DYN525)
    instead: str = ""  # the spec setting that changes the value, for the hint (e.g. k8s.model_cache.mount_path)
    # Other values what relies on it still works with (a directory inside the mount): DYN526, not DYN525.
    works_with: Callable[[str], bool] | None = None

    def breaks(self, value: object) -> bool:
        """Whether ``value`` in its place would break what relies on dyncc's."""
        if not self.relied_on:
            return False
        return not (isinstance(value, str) and self.works_with is not None and self.works_with(value))


class Given(msgspec.Struct, frozen=True):
    """A variable the spec gives a process (a string, or a target's value source such as k8s valueFrom)."""

    name: str
    value: object
    path: YamlPath


class Resolved(msgspec.Struct, frozen=True):
    written: tuple[Written, ...]  # dyncc's entries to write
    given: tuple[Given, ...]  # the spec's entries to write; no name is in both
    problems: tuple[Diagnostic, ...]


def resolve(written: Sequence[Written], given: Sequence[Given], process: str) -> Resolved:
    """Which entry of each name is written, and what is said about it; ``process`` names whose environment
    it is in the messages ("the k8s prefill workers")."""
    mine = {w.name: w for w in written}
    kept: list[Given] = []
    replaced: set[str] = set()
    problems: list[Diagnostic] = []
    for g in given:
        w = mine.get(g.name)
        if w is None:
            kept.append(g)
        elif g.value == w.value:
            continue  # written once, as dyncc's entry
        elif w.breaks(g.value):
            problems.append(_contradicts(w, g, process))
        else:
            problems.append(_replaces(w, g, process))
            replaced.add(w.name)
            kept.append(g)
    return Resolved(tuple(w for w in written if w.name not in replaced), tuple(kept), tuple(problems))


def _shown(value: object) -> str:
    return repr(value[:80]) if isinstance(value, str) else "a value from elsewhere (valueFrom)"


def _contradicts(w: Written, g: Given, process: str) -> Diagnostic:
    instead = f"; to change it, set {w.instead}" if w.instead else ""
    return Diagnostic(
        "DYN525",
        f"{format_yaml_path(g.path)} is {_shown(g.value)}, but dyncc sets {w.name}={w.value!r} in {process} and "
        f"relies on it: {w.why}",
        path=g.path,
        hint=f"remove {w.name} here (dyncc sets it){instead}",
    )


def _replaces(w: Written, g: Given, process: str) -> Diagnostic:
    still = "; the spec's value works as well" if w.relied_on else ""
    return Diagnostic(
        "DYN526",
        f"{format_yaml_path(g.path)} is {_shown(g.value)} where dyncc would set {w.name}={w.value!r} in {process} "
        f"({w.why}{still}): the spec's value is written instead",
        path=g.path,
        severity="warning",
        hint=f"remove {w.name} here to keep dyncc's value; keep it if the other value is meant",
    )


def inside(directory: str) -> Callable[[str], bool]:
    """A ``works_with`` test: an absolute path in ``directory`` or below it."""
    top = posixpath.normpath(directory)

    def test(value: str) -> bool:
        path = posixpath.normpath(value)
        return value.startswith("/") and (path == top or path.startswith(top.rstrip("/") + "/"))

    return test


def duplicate_names(names: Iterable[str]) -> list[str]:
    """Names that occur more than once, in first-seen order."""
    seen: set[str] = set()
    twice: dict[str, None] = {}
    for name in names:
        if name in seen:
            twice[name] = None
        seen.add(name)
    return list(twice)


def unique_problems(problems: Iterable[Diagnostic]) -> list[Diagnostic]:
    """The first of each (code, path): a spec value several processes get is reported once."""
    first: dict[tuple[str, YamlPath], Diagnostic] = {}
    for problem in problems:
        first.setdefault((problem.code, problem.path), problem)
    return list(first.values())
