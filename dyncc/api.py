"""The library API the CLI is a thin layer over: validate specs, build targets, check drift."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from dyncc.compiler import Compilation, check_spec, compile_spec
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.spec import LoadedSpec, load_spec
from dyncc.spec.model import Versions


@dataclasses.dataclass(frozen=True)
class Validation:
    file: str
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def validate(path: str | Path) -> Validation:
    """Load and check one spec; every problem comes back as a diagnostic, none as an exception."""
    try:
        loaded = load_spec(path)
    except DiagnosticError as exc:
        return Validation(str(path), tuple(exc.diagnostics))
    _, _, diagnostics = check_spec(loaded)
    return Validation(str(path), tuple(diagnostics))


@dataclasses.dataclass(frozen=True)
class TargetOutput:
    target: str
    directory: Path
    files: dict[str, str]
    drift: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class BuildResult:
    compilation: Compilation
    outputs: tuple[TargetOutput, ...]
    skipped: tuple[Diagnostic, ...]  # targets `all` left out because they cannot run this spec

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return self.compilation.diagnostics + self.skipped


def render_targets(
    compilation: Compilation, targets: Iterable[str]
) -> tuple[dict[str, dict[str, str]], list[Diagnostic]]:
    """Render each target in memory. ``all`` skips (with a note) targets that can't run the spec."""
    from dyncc.targets import load_target, target_names

    requested = list(targets)
    names = list(target_names()) if "all" in requested else list(dict.fromkeys(requested))
    rendered, skipped, errors = {}, [], []
    for name in names:
        module = load_target(name)
        problem = _target_cannot_run(compilation, name, module)
        if problem is None:
            rendered[name] = _render(compilation, module)
        elif "all" in requested:
            skipped.append(dataclasses.replace(problem, severity="info"))
        else:
            errors.append(problem)
    if errors:
        raise DiagnosticError(errors)
    return rendered, skipped


def _render(compilation: Compilation, module) -> dict[str, str]:
    """A target's files; its coded errors (which carry a spec path) located in the spec like the compiler's."""
    from dyncc.compiler.plan import oversized_files

    try:
        files: dict[str, str] = module.render(compilation.plan)
        too_large = oversized_files(module.NAME, files)
        if too_large:
            raise DiagnosticError(too_large)
        return files
    except DiagnosticError as exc:
        source = compilation.loaded.source
        raise DiagnosticError(
            [d if d.location else d.located(source.locate(d.path)) for d in exc.diagnostics]
        ) from None


def _target_cannot_run(compilation: Compilation, name: str, module) -> Diagnostic | None:
    from dyncc.targets import load_target, target_names

    plan = compilation.plan
    if module.MULTI_NODE or plan.single_node:
        return None
    capable = [n for n in target_names() if load_target(n).MULTI_NODE]
    return Diagnostic(
        "DYN501",
        f"the {name} target runs one node; this spec places workers on {plan.placement.nodes_used} nodes",
        path=("cluster",),
        hint=f"build it with -t {' or -t '.join(capable)}" if capable else "shrink the deployment to one node",
        location=compilation.loaded.source.locate(("cluster",)),
    )


def with_engine(compilation: Compilation, engine: str | None) -> Compilation:
    """The same compilation with the worker engine (trtllm or mocker) of the local and slurm targets
    chosen from outside the spec (``--engine``)."""
    if engine is None:
        return compilation
    plan = compilation.plan
    plan = dataclasses.replace(
        plan,
        local=plan.local.model_copy(update={"engine": engine}),
        slurm=plan.slurm.model_copy(update={"engine": engine}),
    )
    return dataclasses.replace(compilation, plan=plan)


def with_dynamo_version(loaded: LoadedSpec, version: str | None) -> LoadedSpec:
    """The spec deploying another Dynamo version (``--dynamo-version``): the profile, and so the rules, follow."""
    if version is None:
        return loaded
    try:
        versions = Versions(version=version)
    except ValidationError:
        raise DiagnosticError(
            [Diagnostic("DYN013", f"--dynamo-version {version!r} is not a version", hint="e.g. 1.6.1 or 0.5.1")]
        ) from None
    return dataclasses.replace(loaded, spec=loaded.spec.model_copy(update={"dynamo": versions}))


def build(
    spec_path: str | Path,
    targets: Iterable[str],
    out_dir: str | Path,
    check: bool = False,
    engine: str | None = None,
    dynamo_version: str | None = None,
    lock_timeout: float | None = None,
) -> BuildResult:
    """Compile the spec and write (or, with ``check``, compare) ``out_dir/<target>/`` for each target.

    Everything is rendered before anything is written, so a failing build writes nothing; the targets are
    then swapped in together under ``out_dir``'s lock (concurrent builds take turns, at most
    ``lock_timeout`` seconds), so an interrupted build leaves every target all old or all new.
    """
    loaded = with_dynamo_version(load_spec(spec_path), dynamo_version)
    compilation = with_engine(compile_spec(loaded), engine)
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
