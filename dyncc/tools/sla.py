"""``dyncc init --from-sla`` and ``dyncc estimate``: AIConfigurator picks the numbers, dyncc checks them.

``init_from_sla`` asks AIConfigurator for its best rows, turns each (best first) into a spec, runs dyncc's
own rules on it, and returns the first that passes as commented YAML: the prediction, the data's
version and the runner-ups are comments. A row dyncc rejects is kept with its codes and the next one
tried. ``estimate`` asks AIConfigurator about the topology an existing spec describes.

``register(group)`` adds ``estimate`` to a click group; :data:`FROM_SLA_OPTIONS` and
:func:`init_from_sla_command` are for ``dyncc init --from-sla``.
"""

from __future__ import annotations

import io
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import msgspec

from dyncc.aic import mapping, runner
from dyncc.aic.mapping import Candidate, ModelFacts, Request, aic_worker_args
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.engines import configuring, engine
from dyncc.facts import aic_systems
from dyncc.releases import newest, release
from dyncc.spec.model import CoreSpec, Versions
from dyncc.spec.schema import SCHEMA_NOTE


class Modelled(msgspec.Struct, frozen=True):
    """The engine AIConfigurator is asked about, and what the spec deploys (its data may be of another version)."""

    backend: runner.Backend
    deploys: str  # e.g. "Dynamo 1.6.1 with <engine> <version>"

    def data_note(self) -> str:
        return f"{self.backend.label} {self.backend.version}"


def modelled(worker_runtime: str | None = None, dynamo_version: str | None = None) -> Modelled:
    """What the spec deploys (its ``worker_runtime`` and ``dynamo.version``; a spec's defaults where None): the
    engine its workers' config is for, as AIConfigurator names it, and that engine's version in the release."""
    runtime = worker_runtime or CoreSpec.model_fields["worker_runtime"].default
    version = dynamo_version or Versions.model_fields["version"].default
    configured = configuring(engine(runtime))
    backend = configured.aic()
    if backend is None:
        raise DiagnosticError([Diagnostic("DYN908", f"AIConfigurator has no data for {configured.label}")])
    impl = configured.config_impl()
    known = release(version) or newest()  # an unknown release is DYN701 for `validate`; the newest stands in
    return Modelled(backend, f"Dynamo {known.dynamo} with {impl.version_note(impl.release_view(known))}")


class Rejected(msgspec.Struct, frozen=True):
    candidate: Candidate
    codes: tuple[str, ...]
    message: str


class SlaResult(msgspec.Struct, frozen=True):
    text: str  # the spec, commented
    chosen: Candidate
    rejected: tuple[Rejected, ...]
    seconds: float


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange of finite numbers: NaN compares false with both bounds, so FloatRange lets it by,
    and an open range lets infinity by."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


# Option values, checked by click (a usage error, exit 2) before the spec is read or AIConfigurator started.
MAX_SEQUENCE_TOKENS = 1_000_000  # as the spec's benchmark.isl/osl
TOKENS = click.IntRange(1, MAX_SEQUENCE_TOKENS)
SECONDS = FiniteFloatRange(0, 7 * 24 * 3600, min_open=True)  # a wait of up to a week
ACCEPTED = FiniteFloatRange(0, None)  # accepted draft tokens per step; at most the draft length (DYN904)


def _check_request(req: Request) -> None:
    """Values AIConfigurator would turn into a traceback or a meaningless search."""
    problems = []
    if req.gpus < 1:
        problems.append(("--gpus", f"{req.gpus} GPUs", "give at least 1 GPU (--gpus 8)"))
    for option, value in (("--isl", req.isl), ("--osl", req.osl)):
        if value < 1:
            problems.append((option, f"{option} {value}", "sequence lengths are at least 1 token"))
    for option, fvalue in (("--ttft", req.ttft), ("--tpot", req.tpot)):
        if not (math.isfinite(fvalue) and fvalue > 0):
            problems.append((option, f"{option} {fvalue}", "latency targets are positive milliseconds"))
    if req.mtp and req.mtp_accepted is None:
        problems.append(("--mtp-accepted", "--mtp without --mtp-accepted", "say how many draft tokens are accepted"))
    if req.mtp_accepted is not None and not (0 <= req.mtp_accepted <= max(req.mtp, 0)):
        problems.append(("--mtp-accepted", f"--mtp-accepted {req.mtp_accepted}", "between 0 and --mtp"))
    if problems:
        raise DiagnosticError(
            [Diagnostic("DYN904", f"{opt}: {what} cannot be searched", hint=hint) for opt, what, hint in problems]
        )


def search(req: Request, timeout: float, progress: runner.Progress | None) -> dict[str, Any]:
    _check_request(req)
    about = modelled()  # the engine the search is for: the default spec's
    args: dict[str, Any] = {
        "model": req.model,
        "system": req.system,
        "total_gpus": req.gpus,
        "isl": req.isl,
        "osl": req.osl,
        "ttft": req.ttft,
        "tpot": req.tpot,
        "backend_version": about.backend.version,
        "top_n": 5,
    }
    if req.mtp:
        args.update(nextn=req.mtp, nextn_accepted=req.mtp_accepted)
    where = runner.Failure(model_path=(), system_path=(), what="AIConfigurator's search")
    return runner.run("search", args, timeout=timeout, progress=progress, failure=where, engine=about.backend)


def choose(search_result: dict[str, Any], req: Request, name: str) -> tuple[str, Candidate, list[Rejected]]:
    """The first candidate dyncc's rules accept, as commented text, and those rejected before it."""
    found, unreadable = mapping.candidates(search_result, req.mode, req.gpus)
    facts = ModelFacts.from_json(search_result.get("model") or {})
    rejected: list[Rejected] = []
    for c in found:
        try:
            data = mapping.spec_data(c, req, facts, name)
        except DiagnosticError as exc:
            rejected.append(Rejected(c, tuple(d.code for d in exc.diagnostics), exc.diagnostics[0].message))
            continue
        text = render(data, c, req, found, rejected, search_result)
        errors = _spec_errors(text)
        if not errors:
            return text, c, rejected
        rejected.append(Rejected(c, tuple(d.code for d in errors), errors[0].message))
    raise DiagnosticError([_nothing_accepted(req, rejected, unreadable)])


def _nothing_accepted(req: Request, rejected: list[Rejected], unreadable: list[Diagnostic]) -> Diagnostic:
    if not rejected and not unreadable:
        return Diagnostic(
            "DYN905",
            f"AIConfigurator found no {req.mode if req.mode != 'best' else ''} configuration meeting the SLA".replace(
                "  ", " "
            ),
            hint="relax --ttft or --tpot, give it more GPUs, or try --mode best",
        )
    why = "; ".join(f"{r.candidate.label()}: {', '.join(r.codes)} {r.message}" for r in rejected[:5])
    why = why or "; ".join(d.message for d in unreadable[:3])
    return Diagnostic(
        "DYN908",
        f"dyncc rejected every configuration AIConfigurator proposed ({why})",
        hint="try --mode agg or --mode disagg, another GPU count, or write the spec by hand (`dyncc init`)",
    )


def _spec_errors(text: str) -> list[Diagnostic]:
    """dyncc's own verdict on the generated text: loading rules, graph rules and placement."""
    from dyncc.compiler import check_spec
    from dyncc.deployment import load_spec_text

    try:
        loaded = load_spec_text(text, "<from-sla>")
    except DiagnosticError as exc:
        return [d for d in exc.diagnostics if d.is_error]
    _, _, diagnostics = check_spec(loaded)
    return [d for d in diagnostics if d.is_error]


def prediction_line(c: Candidate) -> str:
    p = mapping.prediction(c)
    return (
        f"TTFT {p['ttft']:.3f} ms, TPOT {p['tpot']:.3f} ms, {p['tokens_per_s_per_gpu']:.3f} tokens/s/GPU, "
        f"{p['tokens_per_s_per_user']:.3f} tokens/s/user"
    )


def render(
    data: dict[str, Any],
    c: Candidate,
    req: Request,
    found: list[Candidate],
    rejected: list[Rejected],
    search_result: dict[str, Any],
) -> str:
    """The spec as YAML with the search's story in comments (prediction, version, runner-ups)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 120
    buf = io.StringIO()
    yaml.dump(data, buf)
    concurrency = int(c.row.get("concurrency") or 0)
    sla = f"ISL {req.isl}, OSL {req.osl}, TTFT <= {req.ttft:g} ms, TPOT <= {req.tpot:g} ms"
    if req.mtp:
        sla += f", MTP {req.mtp} ({req.mtp_accepted:g} accepted)"
    about = modelled()
    header = [
        SCHEMA_NOTE.rstrip("\n"),
        f"# Chosen by AIConfigurator {runner.AIC_VERSION} for {req.model} on {req.gpus} x {req.system}: {sla}.",
        f"# Prediction ({c.label()}, {c.groups} replica group(s) of {c.gpus_per_group} GPUs):",
        f"#   {prediction_line(c)}",
        f"#   at concurrency {concurrency} per replica group ({concurrency * c.groups} in all).",
        f"# Its data was measured on {about.data_note()}; this spec deploys {about.deploys}.",
        "# `dyncc estimate` on this file asks AIConfigurator again for the topology as edited.",
    ]
    others = [o for o in found if o is not c][:6]
    if others:
        header.append("# Runner-ups (AIConfigurator's order; edit pools: to take one):")
        header += [f"#   {o.label()}: {prediction_line(o)}" for o in others]
    if rejected:
        header.append("# Rows dyncc rejected:")
        header += [f"#   {r.candidate.label()}: {', '.join(r.codes)} {r.message}" for r in rejected]
    return "\n".join(header) + "\n" + buf.getvalue()


def init_from_sla(
    req: Request, name: str, *, timeout: float = runner.DEFAULT_TIMEOUT_S, progress: runner.Progress | None = None
) -> SlaResult:
    import time

    started = time.monotonic()
    result = search(req, timeout, progress)
    text, chosen, rejected = choose(result, req, name)
    return SlaResult(text, chosen, tuple(rejected), time.monotonic() - started)


# --- dyncc estimate -----------------------------------------------------------------------------


class Estimate(msgspec.Struct, frozen=True):
    mode: str
    ttft: float
    tpot: float
    tokens_per_s_per_gpu: float
    tokens_per_s_per_user: float
    raw: dict[str, Any]
    notes: tuple[str, ...]

    def text(self) -> str:
        lines = [
            f"AIConfigurator {runner.AIC_VERSION} ({self.mode}): TTFT {self.ttft:.3f} ms, TPOT {self.tpot:.3f} ms, "
            f"{self.tokens_per_s_per_gpu:.3f} tokens/s/GPU, {self.tokens_per_s_per_user:.3f} tokens/s/user"
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes]) + "\n"


def estimate_args(
    spec_path: Path, isl: int | None, osl: int | None, mtp_accepted: float | None, batch_size: int | None = None
) -> dict[str, Any]:
    """The cli_estimate arguments for the topology a spec describes; coded errors for what cannot be asked."""
    return estimate_request(spec_path, isl, osl, mtp_accepted, batch_size)[0]


def estimate_request(
    spec_path: Path, isl: int | None, osl: int | None, mtp_accepted: float | None, batch_size: int | None = None
) -> tuple[dict[str, Any], Modelled]:
    """:func:`estimate_args`, and the engine they ask about."""
    from dyncc.deployment import load_spec

    loaded = load_spec(spec_path)
    spec = loaded.spec
    source = loaded.source

    def err(code: str, message: str, path: tuple, hint: str) -> DiagnosticError:
        return DiagnosticError([Diagnostic(code, message, path, hint, location=source.locate(path))])

    from dyncc.compiler.groups import resolve

    def system_of(role: str) -> str:
        """The AIConfigurator system of the GPU the pool runs on (its node group's, else cluster.gpu_type)."""
        group, problem = resolve(spec, role, getattr(spec.pools, role))  # type: ignore[arg-type]
        if problem is not None:
            raise DiagnosticError([problem.located(source.locate(problem.path))])
        gpu_type = group.gpu_type if group is not None else spec.cluster.gpu_type
        where = group.path + ("gpu_type",) if group is not None and group.explicit else ("cluster", "gpu_type")
        if gpu_type is None:
            raise err(
                "DYN903",
                "cluster.gpu_type is not set: AIConfigurator needs the GPU the spec runs on",
                ("cluster",),
                f"set cluster.gpu_type to one of {', '.join(sorted({n for n, _ in aic_systems.SYSTEMS.values()}))}",
            )
        system = aic_systems.system_for_gpu_type(gpu_type)
        if system is None:
            raise err(
                "DYN903",
                f"AIConfigurator has no system for gpu_type {gpu_type!r}",
                where,
                f"one of {', '.join(n for n, _ in aic_systems.SYSTEMS.values())}",
            )
        return system

    declared = [role for role, _ in spec.pools.declared()]
    system = system_of("agg" if "agg" in declared else "prefill" if "prefill" in declared else declared[0])
    for option, tokens in (("--isl", isl), ("--osl", osl)):
        if tokens is not None and not 1 <= tokens <= MAX_SEQUENCE_TOKENS:
            raise err("DYN904", f"{option} {tokens} is not a number of tokens", (), f"1 to {MAX_SEQUENCE_TOKENS}")
    bench = spec.benchmark
    isl = isl if isl is not None else (bench.isl if bench else None)  # --isl 0 is refused, not replaced
    osl = osl if osl is not None else (bench.osl if bench else None)
    if not isl or not osl:
        raise err("DYN904", "no ISL/OSL to estimate for", ("benchmark",), "add benchmark: {isl, osl}, or --isl/--osl")
    is_moe = bool(loaded.facts.moe) or any(p.expert_parallel > 1 for _, p in spec.pools.declared())
    args: dict[str, Any] = {"model": spec.model.path, "system": system, "isl": isl, "osl": osl}
    about = modelled(spec.worker_runtime, spec.dynamo.version)
    args["backend_version"] = about.backend.version
    if spec.speculative.mode not in ("mtp", "none"):
        raise err(
            "DYN908",
            f"AIConfigurator models MTP only, not {spec.speculative.mode}",
            ("speculative", "mode"),
            "estimate without speculation",
        )
    if spec.speculative.mode == "mtp":
        draft_len = spec.speculative.draft_len or 1
        if mtp_accepted is None:
            raise err("DYN904", "MTP needs --mtp-accepted", ("speculative", "mode"), "e.g. --mtp-accepted 0.8")
        if not (math.isfinite(mtp_accepted) and 0 <= mtp_accepted <= draft_len):
            raise err(
                "DYN904",
                f"--mtp-accepted {mtp_accepted} is not between 0 and the draft length {draft_len}",
                ("speculative", "draft_len"),
                f"the draft tokens accepted per step, at most speculative.draft_len ({draft_len})",
            )
        args.update(nextn=draft_len, nextn_accepted=mtp_accepted)
    elif mtp_accepted is not None:
        raise err(
            "DYN904",
            f"--mtp-accepted is given, but the spec does not speculate with MTP (speculative.mode "
            f"{spec.speculative.mode}): the estimate would not use it",
            ("speculative", "mode"),
            "drop --mtp-accepted, or set speculative.mode: mtp",
        )
    pools = dict(spec.pools.declared())
    if "encode" in pools:
        raise err("DYN908", "dyncc does not map encode pools to AIConfigurator", ("pools", "encode"), "drop it")
    for role, pool in pools.items():
        if pool.engine.max_batch_size is None and batch_size is None:
            raise err(
                "DYN904",
                f"pools.{role} has no engine.max_batch_size: AIConfigurator estimates at a batch size",
                ("pools", role, "engine"),
                "set engine.max_batch_size (per attention-DP rank)",
            )
    if "agg" in pools:
        agg = pools["agg"]
        args.update(mode="agg", batch_size=batch_size or agg.engine.max_batch_size, **aic_worker_args(agg, is_moe))
        args.update(_memory_args(agg, ""))
        return args, about
    prefill, decode = pools["prefill"], pools["decode"]
    groups = math.gcd(prefill.replicas, decode.replicas)  # the spec as copies of AIConfigurator's replica group
    args.update(mode="disagg", prefill_num_workers=prefill.replicas // groups)
    args.update(decode_num_workers=decode.replicas // groups)
    args.update(
        prefill_batch_size=prefill.engine.max_batch_size or 1,
        decode_batch_size=batch_size or decode.engine.max_batch_size,
    )
    for prefix, pool in (("prefill_", prefill), ("decode_", decode)):
        args.update({prefix + k: v for k, v in aic_worker_args(pool, is_moe).items()})
        args.update(_memory_args(pool, prefix))
    decode_system = system_of("decode")
    if decode_system != system:  # the decode pool on another GPU: AIConfigurator estimates each on its own
        args["decode_system_name"] = decode_system
    return args, about


def _memory_args(pool: Any, prefix: str) -> dict[str, Any]:
    """The engine limits AIConfigurator sizes the KV cache by (its defaults: ISL + OSL, 0.9)."""
    engine, out = pool.engine, {}
    if engine.max_seq_len is not None:
        out[prefix + "max_seq_len"] = engine.max_seq_len
    if engine.free_gpu_memory_fraction is not None:
        out[prefix + "free_gpu_memory_fraction"] = engine.free_gpu_memory_fraction
    return out


def estimate(
    spec_path: Path,
    *,
    isl: int | None = None,
    osl: int | None = None,
    mtp_accepted: float | None = None,
    batch_size: int | None = None,
    timeout: float = runner.DEFAULT_TIMEOUT_S,
    progress: runner.Progress | None = None,
) -> Estimate:
    args, about = estimate_request(spec_path, isl, osl, mtp_accepted, batch_size)
    where = runner.Failure(path=("pools",), what="AIConfigurator's estimate")
    result = runner.run("estimate", args, timeout=timeout, progress=progress, failure=where, engine=about.backend)
    raw = result.get("raw") or {}
    notes = [
        f"AIConfigurator's data was measured on {about.data_note()}; the spec deploys {about.deploys}",
        f"at ISL {args['isl']}, OSL {args['osl']}, batch size = engine.max_batch_size per attention-DP rank",
        _gpu_note(args),
    ]
    if result.get("warning"):
        notes.append(str(result["warning"]))
    return Estimate(
        mode=str(args["mode"]),
        ttft=float(result.get("ttft") or 0.0),
        tpot=float(result.get("tpot") or 0.0),
        tokens_per_s_per_gpu=float(raw.get("tokens/s/gpu") or 0.0),
        tokens_per_s_per_user=float(raw.get("tokens/s/user") or 0.0),
        raw=raw,
        notes=tuple(notes),
    )


def _gpu_note(args: dict[str, Any]) -> str:
    """Which AIConfigurator system each pool was estimated on."""
    if args["mode"] == "agg":
        return f"agg workers on {args['system']}"
    return f"prefill workers on {args['system']}, decode workers on {args.get('decode_system_name', args['system'])}"


HEADER_PREDICTION = re.compile(
    r"#   TTFT (?P<ttft>[\d.]+) ms, TPOT (?P<tpot>[\d.]+) ms, (?P<gpu>[\d.]+) tokens/s/GPU, (?P<user>[\d.]+) tokens/s/user"
)


def header_prediction(text: str) -> dict[str, float] | None:
    """The chosen row's prediction as ``init --from-sla`` wrote it (the first prediction line)."""
    m = HEADER_PREDICTION.search(text)
    if m is None:
        return None
    return {"ttft": float(m["ttft"]), "tpot": float(m["tpot"]), "tokens_per_s_per_gpu": float(m["gpu"])}


# --- click wiring --------------------------------------------------------------------------------


def _dns_name(model: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", model.rsplit("/", 1)[-1].lower()).strip("-") or "deployment"
    return base[:63].strip("-") or "deployment"


def _progress(quiet: bool) -> runner.Progress | None:
    return None if quiet else runner.stderr_progress("dyncc: AIConfigurator searching")


FROM_SLA_OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.option("--from-sla", is_flag=True, help="Pick the topology with AIConfigurator (the `sla` extra)."),
    click.option("--model", "sla_model", default=None, help="--from-sla: model (HF id), e.g. Qwen/Qwen3-32B."),
    click.option("--system", "sla_system", default=None, help="--from-sla: AIConfigurator system, e.g. h200_sxm."),
    click.option("--gpus", "sla_gpus", type=int, default=None, help="--from-sla: total GPUs."),
    click.option("--isl", "sla_isl", type=int, default=4000, show_default=True, help="--from-sla: input tokens."),
    click.option("--osl", "sla_osl", type=int, default=500, show_default=True, help="--from-sla: output tokens."),
    click.option("--ttft", "sla_ttft", type=float, default=1000.0, show_default=True, help="--from-sla: TTFT ms."),
    click.option("--tpot", "sla_tpot", type=float, default=50.0, show_default=True, help="--from-sla: TPOT ms."),
    click.option("--mode", "sla_mode", type=click.Choice(["best", "agg", "disagg"]), default="best", show_default=True),
    click.option("--mtp", "sla_mtp", type=int, default=0, help="--from-sla: MTP draft length (0 = none)."),
    click.option("--mtp-accepted", "sla_mtp_accepted", type=float, default=None, help="Accepted draft tokens/step."),
    click.option("--timeout", "sla_timeout", type=SECONDS, default=runner.DEFAULT_TIMEOUT_S, show_default=True),
]


def with_from_sla_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(FROM_SLA_OPTIONS):
        command = option(command)
    return command


def init_from_sla_command(
    *,
    name: str | None,
    output: str | None,
    sla_model: str | None,
    sla_system: str | None,
    sla_gpus: int | None,
    sla_isl: int,
    sla_osl: int,
    sla_ttft: float,
    sla_tpot: float,
    sla_mode: str,
    sla_mtp: int,
    sla_mtp_accepted: float | None,
    sla_timeout: float,
    **_: Any,
) -> None:
    """The body of ``dyncc init --from-sla``: writes the spec to ``output`` (new file) or stdout."""
    missing = [o for o, v in (("--model", sla_model), ("--system", sla_system), ("--gpus", sla_gpus)) if v is None]
    if missing:
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN904",
                    f"--from-sla needs {', '.join(missing)}",
                    hint="e.g. --model Qwen/Qwen3-32B --system h200_sxm --gpus 8",
                )
            ]
        )
    assert sla_model is not None and sla_system is not None and sla_gpus is not None
    req = Request(
        sla_model, sla_system, sla_gpus, sla_isl, sla_osl, sla_ttft, sla_tpot, sla_mode, sla_mtp, sla_mtp_accepted
    )
    result = init_from_sla(req, name or _dns_name(sla_model), timeout=sla_timeout, progress=_progress(False))
    for r in result.rejected:
        click.echo(f"dyncc: skipped {r.candidate.label()}: {', '.join(r.codes)} {r.message}", err=True)
    click.echo(f"dyncc: AIConfigurator searched for {result.seconds:.1f} s; took {result.chosen.label()}", err=True)
    if output:
        from dyncc.output import write_new_file

        write_new_file(Path(output), result.text)
        click.echo(f"wrote {output}: `dyncc validate {output}`, `dyncc estimate {output}`", err=True)
    else:
        sys.stdout.write(result.text)


def register(group: click.Group) -> None:
    """Add ``estimate`` to ``group`` (``init --from-sla`` uses :func:`with_from_sla_options`)."""

    @group.command("estimate")
    @click.argument("spec", type=click.Path(dir_okay=False))
    @click.option("--isl", type=TOKENS, default=None, help="Input tokens (default: the spec's benchmark.isl).")
    @click.option("--osl", type=TOKENS, default=None, help="Output tokens (default: the spec's benchmark.osl).")
    @click.option("--mtp-accepted", type=ACCEPTED, default=None, help="Accepted MTP draft tokens per step.")
    @click.option("--timeout", type=SECONDS, default=runner.DEFAULT_TIMEOUT_S, show_default=True, help="Seconds.")
    @click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
    def estimate_command(
        spec: str, isl: int | None, osl: int | None, mtp_accepted: float | None, timeout: float, fmt: str
    ) -> None:
        """AIConfigurator's prediction (TTFT, TPOT, tokens/s/GPU) for the topology SPEC describes."""
        import json

        result = estimate(
            Path(spec), isl=isl, osl=osl, mtp_accepted=mtp_accepted, timeout=timeout,
            progress=runner.stderr_progress("dyncc: AIConfigurator estimating"),
        )  # fmt: skip
        if fmt == "json":
            fields = msgspec.structs.asdict(result)
            fields.pop("raw")
            click.echo(json.dumps(fields, indent=2))
        else:
            click.echo(result.text(), nl=False)
