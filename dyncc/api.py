"""The library API the CLI is a thin layer over: validate specs, build targets, check drift."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
from pydantic import ValidationError

from dyncc.compiler import Compilation, check_spec, compile_spec, locate
from dyncc.compiler.plan import Files, lower
from dyncc.compiler.timing_file import BUILTIN
from dyncc.deployment import load_spec, load_spec_text
from dyncc.diagnostics import Diagnostic, DiagnosticError, has_errors
from dyncc.spec import LoadedSpec
from dyncc.spec.loader import read_spec_bytes
from dyncc.spec.model import Versions
from dyncc.targets.base import Target, cannot_run, left_out


class Validation(msgspec.Struct, frozen=True):
    file: str
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def validate(path: str | Path, targets: Iterable[str] = ("all",), dynamo_version: str | None = None) -> Validation:
    """Load and check one spec file (:func:`validate_text` on its bytes). Every problem comes back as a
    diagnostic, none as an exception."""
    try:
        raw = read_spec_bytes(Path(path))  # bounded: the loader's size cap
    except DiagnosticError as exc:
        return Validation(str(path), tuple(exc.diagnostics))
    return validate_text(raw, str(path), Path(path).parent, targets, dynamo_version)


def validate_text(
    raw: bytes | str,
    file: str,
    base_dir: Path,
    targets: Iterable[str] = ("all",),
    dynamo_version: str | None = None,
) -> Validation:
    """Load and check one spec's text, run the checks of the targets it is meant for (``all``: every
    registered target that can run it; the others are named in an info diagnostic with their reason), and
    check every point of its `sweep:` the same way (DYN804/DYN805). `validate` and the language server
    both call this, so the editor shows what CI will. ``dynamo_version`` checks the spec as deploying that
    release instead of its own (`validate --dynamo-version`, as `build --dynamo-version` builds it)."""
    try:
        loaded = with_dynamo_version(load_spec_text(raw, file, base_dir), dynamo_version)
    except DiagnosticError as exc:
        return Validation(file, tuple(exc.diagnostics))
    wanted = tuple(targets)
    found = check(loaded, wanted)
    if loaded.spec.sweep and not has_errors(found):
        from dyncc import sweep_points

        points = sweep_points.expand_loaded(raw, loaded, dynamo_version)
        sweep_points.check_points(points, loaded, wanted, check)
        found = locate(loaded, found + sweep_points.summary(points))
    return Validation(file, tuple(found))


def check(loaded: LoadedSpec, targets: Iterable[str] = ("all",), render: bool = True) -> list[Diagnostic]:
    """The rules and placement of a loaded spec, then each requested target's checks (``all``: every target
    that can run it, the others named in an info note), located in the spec. With ``render`` each target is
    also rendered in memory, as `build` renders it (:func:`render_targets`), for the limits only the output
    shows (a Kubernetes object or a job script too large): `validate` and `build` refuse the same specs."""
    targets = tuple(targets)
    graph, placement, diagnostics = check_spec(loaded)
    if has_errors(diagnostics) or placement is None:
        return list(diagnostics)
    compilation = Compilation(loaded, graph, placement, lower(graph, placement), tuple(diagnostics))
    found = list(diagnostics)
    for target, problem in _targets_for(compilation, targets):
        if problem is not None:
            found.append(problem)
            continue
        found += _left_out(compilation, target, "all" in targets)
        checked = target.check(compilation.plan, target.settings(loaded.spec))
        found += [d for d in checked if not d.is_error]  # its warnings and notes; errors come from rendering
        if not render:
            found += [d for d in checked if d.is_error]
            continue
        try:
            _render(compilation, target)
        except DiagnosticError as exc:
            found += exc.diagnostics
    return locate(loaded, found)


class TargetOutput(msgspec.Struct, frozen=True):
    target: str
    directory: Path
    files: Files
    drift: tuple[str, ...] = ()


class BuildResult(msgspec.Struct, frozen=True):
    compilation: Compilation
    outputs: tuple[TargetOutput, ...]
    skipped: tuple[Diagnostic, ...]  # targets `all` left out because they cannot run this spec

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return self.compilation.diagnostics + self.skipped


def _targets_for(compilation: Compilation, requested: Iterable[str]) -> list[tuple[Target, Diagnostic | None]]:
    """Each requested target, with why it cannot run the compilation (None: it can). ``all`` means every
    registered target, and turns a refusal into an info note (the target is skipped, not failed)."""
    from dyncc.targets import load_target, targets

    wanted = list(requested)
    chosen = list(targets()) if "all" in wanted else [load_target(n) for n in dict.fromkeys(wanted)]
    found = []
    for target in chosen:
        problem = cannot_run(compilation.plan, target, targets())
        if problem is not None:
            problem = compilation.loaded.located(problem)
            if "all" in wanted:
                problem = _skip_note(target, problem)
        found.append((target, problem))
    return found


def _left_out(compilation: Compilation, target: Target, every: bool) -> list[Diagnostic]:
    """Warnings for the add-on features (a load test) ``target`` builds the spec without; notes when the target
    was not asked for by name (``all``), as a target that cannot run the spec at all is then skipped with a
    note: a load test every spec with `benchmark:` would warn about on compose is not the user's mistake."""
    from dyncc.targets import targets

    found = left_out(compilation.plan, target, targets())
    if every:
        found = [msgspec.structs.replace(d, severity="info") if d.severity == "warning" else d for d in found]
    return [compilation.loaded.located(d) for d in found]


def _skip_note(target: Target, problem: Diagnostic) -> Diagnostic:
    return msgspec.structs.replace(problem, severity="info", message=f"{target.name} skipped: {problem.message}")


def render_targets(compilation: Compilation, targets: Iterable[str]) -> tuple[dict[str, Files], list[Diagnostic]]:
    """Render each target in memory. ``all`` skips (with a note) targets that cannot run the spec; a target
    that can run it and whose checks fail is an error, with ``all`` too: `validate` reports the same errors
    (:func:`check`), and a build that leaves a target out must not pass where validation fails."""
    targets = tuple(targets)
    rendered: dict[str, Files] = {}
    skipped: list[Diagnostic] = []
    errors: list[Diagnostic] = []
    for target, problem in _targets_for(compilation, targets):
        if problem is not None:
            (errors if problem.is_error else skipped).append(problem)
            continue
        try:
            rendered[target.name], notes = _render(compilation, target)
        except DiagnosticError as exc:  # collected, so one run names every target's errors
            errors += exc.diagnostics
            continue
        skipped += _left_out(compilation, target, "all" in targets) + notes
    if errors:
        raise DiagnosticError(errors)
    return rendered, skipped


def _render(compilation: Compilation, target: Target) -> tuple[Files, list[Diagnostic]]:
    """A target's files after its checks, and the warnings and notes of those checks (a build shows what
    `validate` shows); its coded errors (which carry a spec path) located in the spec."""
    from dyncc.compiler.plan import oversized_files

    settings = target.settings(compilation.loaded.spec)
    try:
        found = target.check(compilation.plan, settings)
        problems = [d for d in found if d.is_error]
        if problems:
            raise DiagnosticError(problems)
        files = target.render(compilation.plan, settings)
        too_large = oversized_files(target.name, files)
        if too_large:
            raise DiagnosticError(too_large)
        return files, locate(compilation.loaded, [d for d in found if not d.is_error])
    except DiagnosticError as exc:
        raise DiagnosticError(locate(compilation.loaded, list(exc.diagnostics))) from None


def with_engine(compilation: Compilation, engine: str | None) -> Compilation:
    """The same spec compiled with the worker runtime (an engine's name) chosen from outside it (``--engine``)."""
    if engine is None:
        return compilation
    return compile_spec(with_worker_runtime(compilation.loaded, engine))


def with_worker_runtime(loaded: LoadedSpec, runtime: str | None) -> LoadedSpec:
    """The spec with ``worker_runtime`` set from outside it (``--engine``); the rules and targets see it."""
    if runtime is None:
        return loaded
    return loaded.setting(("worker_runtime",), f"--engine {runtime}", worker_runtime=runtime)


def with_mocker_timing(loaded: LoadedSpec, timing: str | None) -> LoadedSpec:
    """The spec with ``mocker_timing`` set from outside it (``--timing``); a file named there is relative to
    where the command runs, so it is made absolute (the spec's own paths are relative to the spec)."""
    if timing is None:
        return loaded
    if timing not in ("builtin", "aiconfigurator"):
        timing = os.path.abspath(timing)
    return loaded.setting(("mocker_timing",), f"--timing {timing}", mocker_timing=timing)


def compile_timed(loaded: LoadedSpec, progress: Callable[[float, str], None] | None = None) -> Compilation:
    """Compile, then give the mock pools their timing files (AIConfigurator runs here, or its cache is read,
    when the spec's mocker_timing says `aiconfigurator`; nothing happens for real engines)."""
    compilation = compile_spec(loaded)
    if compilation.plan.mocker_timing == BUILTIN:
        return compilation  # nothing to time: the twin (and AIConfigurator's runner) is not even imported
    from dyncc.twin.resolve import with_timing

    return with_timing(compilation, progress=progress)


def with_dynamo_version(loaded: LoadedSpec, version: str | None) -> LoadedSpec:
    """The spec deploying another Dynamo version (``--dynamo-version``): the profile, and so the rules, follow."""
    if version is None:
        return loaded
    versions = _versions(version)
    if versions is None:
        unprefixed = version[1:] if version[:1] in ("v", "V") else ""
        hint = f"did you mean `{unprefixed}`? (no `v`)" if _versions(unprefixed) else "e.g. 1.6.1 or 0.5.1"
        raise DiagnosticError(
            [Diagnostic("DYN013", f"--dynamo-version {version!r} is not a version", ("dynamo", "version"), hint=hint)]
        )
    return loaded.setting(("dynamo",), f"--dynamo-version {version}", dynamo=versions)


def _versions(version: str) -> Versions | None:
    """``dynamo:`` deploying ``version``, or None when the spec would refuse it as a version."""
    try:
        return Versions(version=version)
    except ValidationError:
        return None


def build(
    spec_path: str | Path,
    targets: Iterable[str],
    out_dir: str | Path,
    check: bool = False,
    engine: str | None = None,
    dynamo_version: str | None = None,
    lock_timeout: float | None = None,
    timing: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> BuildResult:
    """Compile the spec and write (or, with ``check``, compare) ``out_dir/<target>/`` for each target.

    Everything is rendered before anything is written, so a failing build writes nothing; the targets are
    then swapped in together under ``out_dir``'s lock (concurrent builds take turns, at most
    ``lock_timeout`` seconds), so an interrupted build leaves every target all old or all new.
    """
    loaded = with_worker_runtime(with_dynamo_version(load_spec(spec_path), dynamo_version), engine)
    compilation = compile_timed(with_mocker_timing(loaded, timing), progress)
    from dyncc.output import LOCK_TIMEOUT_S, drift, write_trees

    rendered, skipped = render_targets(compilation, targets)
    out = Path(out_dir)
    if check:
        outputs = [
            TargetOutput(name, out / name, files, tuple(drift(out / name, files))) for name, files in rendered.items()
        ]
    else:
        write_trees(out, rendered, LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout)
        outputs = [TargetOutput(name, out / name, files) for name, files in rendered.items()]
    return BuildResult(compilation, tuple(outputs), tuple(skipped))
