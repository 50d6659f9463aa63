"""``dyncc import``: an existing DynamoGraphDeployment (v1beta1 or v1alpha1) and its engine configs -> a spec.

The manifests are read into :class:`DgdFacts` (per role: replicas, GPUs, image, worker flags, engine config),
the same reading the round trip applies to what dyncc builds from the imported spec, so the two can be
compared fact by fact (:func:`compare`). Whatever the spec cannot say is a coded warning (DYN951-DYN969)
naming the facts it accounts for (:class:`ImportNote`), never dropped silently: the round trip's
differences must all be accounted for by a warning.
"""

from __future__ import annotations

import dataclasses
import json
import math
import posixpath
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from dyncc.diagnostics import Diagnostic, DiagnosticError, YamlPath, format_yaml_path, printable
from dyncc.spec.input_gate import SourceMap
from dyncc.tools.import_input import EngineText, Sources, engine_config, manifest_error, read_sources

DiffKey = tuple[str, ...]  # (role, aspect[, item]): ("decode", "flag", "--modality"), ("agg", "engine", "*")
WORKER_ROLES = ("agg", "prefill", "decode", "encode")
MODULES = {"dynamo.frontend": "frontend", "dynamo.planner": "planner", "dynamo.trtllm": "worker"}
OLD_DISAGG_MODE = {"prefill_and_decode": "agg"}
# Frontend settings Dynamo also reads from the environment; folded into flags so both spellings compare equal.
ENV_FLAGS = {
    "DYN_ROUTER_MODE": "--router-mode",
    "DYN_MIGRATION_LIMIT": "--migration-limit",
    "DYN_HTTP_PORT": "--http-port",
}
# Other spellings of one flag: Dynamo's parsers accept both (`--kv-events` is 1.6's obsolete alias).
FLAG_ALIASES = {
    "--model": "--model-path",
    "--kv-events": "--router-kv-events",
    "--no-kv-events": "--no-router-kv-events",
}
# Values that are Dynamo's or TRT-LLM's own defaults: written or left out, they mean the same.
DEFAULT_FLAGS = {
    "frontend": {
        "--http-port": "8000",
        "--router-mode": "round-robin",
        "--namespace": "dynamo",
        "--migration-limit": "0",
        # The router's block size when not given is the workers' (their default 32, which dyncc writes).
        "--kv-cache-block-size": "32",
    },
    "worker": {"--namespace": "dynamo", "--kv-block-size": "32", "--disaggregation-mode": "agg"},
}
DEFAULT_ENGINE: dict[str, Any] = {
    "tensor_parallel_size": 1,
    "pipeline_parallel_size": 1,
    "moe_expert_parallel_size": 1,
    "enable_attention_dp": False,
    "backend": "pytorch",
    "disable_overlap_scheduler": False,
    "kv_cache_config.tokens_per_block": 32,
    "cuda_graph_config": {},
    "trust_remote_code": False,
}
# The model a TensorRT-LLM worker serves when its command names none (dynamo.trtllm's DEFAULT_MODEL, in 0.5.1
# and 1.6.1 alike).
DYNAMO_DEFAULT_MODEL = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
# Pod settings dyncc writes itself: not reported as lost.
GENERATED_CONTAINER_KEYS = {"name", "image", "command", "args", "env", "envFrom", "resources", "volumeMounts"}


@dataclasses.dataclass(frozen=True)
class ImportNote:
    """A coded warning and the facts of the original it accounts for in the round trip."""

    diagnostic: Diagnostic
    covers: tuple[DiffKey, ...] = ()


@dataclasses.dataclass
class Component:
    name: str
    kind: str  # frontend, planner, worker, or what the manifest said
    role: str  # frontend, planner, agg, prefill, decode, encode
    path: YamlPath
    replicas: int
    image: str | None
    module: str | None
    argv: list[str]  # after `python3 -m MODULE`
    env: dict[str, str]
    secret: str | None
    gpus: int  # per pod
    node_count: int
    working_dir: str | None
    mounts: list[dict]
    volumes: list[dict]
    unmodelled: list[str]  # pod and container keys dyncc does not write


@dataclasses.dataclass
class RoleFacts:
    replicas: int
    gpus: int  # per worker: the pod's GPU limit x nodeCount
    image: str | None
    flags: dict[str, str]  # normalized flag -> value ("" for a switch)
    engine: dict[str, Any] | None  # flattened engine config; None when the manifests do not hold it
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # the DGD's env, then the component's


@dataclasses.dataclass
class DgdFacts:
    api_version: str
    name: str
    roles: dict[str, RoleFacts]


@dataclasses.dataclass(frozen=True)
class Difference:
    key: DiffKey
    original: Any
    rebuilt: Any

    def __str__(self) -> str:
        return f"{'/'.join(self.key)}: {self.original!r} -> {self.rebuilt!r}"


@dataclasses.dataclass(frozen=True)
class ImportResult:
    spec: dict[str, Any]
    text: str
    notes: tuple[ImportNote, ...]
    facts: DgdFacts

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(n.diagnostic for n in self.notes)


# --- reading manifests ------------------------------------------------------------------------------


def components(dgd: dict, source: SourceMap | None = None) -> list[Component]:
    """The DGD's components in one shape, whichever API version wrote them (``source`` locates errors)."""
    spec = dgd.get("spec") or {}
    out = []
    try:
        if "components" in spec:
            for i, c in enumerate(spec["components"] or []):
                out.append(_component_v1beta1(c, ("spec", "components", i)))
        else:
            for name, s in (spec.get("services") or {}).items():
                out.append(_component_v1alpha1(name, s, ("spec", "services", name)))
    except _UnsplittableCommand as exc:
        raise manifest_error(
            f"{format_yaml_path(exc.path)}: the container's `sh -c` line cannot be split as sh would: {exc}",
            exc.path,
            source,
        ) from None
    return out


def _component_v1beta1(c: dict, path: YamlPath) -> Component:
    pod = (c.get("podTemplate") or {}).get("spec") or {}
    containers = pod.get("containers") or [{}]
    main = next((k for k in containers if k.get("name") == "main"), containers[0])
    limits = (main.get("resources") or {}).get("limits") or {}
    secret = next(
        (e["secretRef"].get("name") for e in main.get("envFrom") or [] if isinstance(e.get("secretRef"), dict)), None
    )
    unmodelled = [f"podTemplate.spec.{k}" for k in pod if k not in ("containers", "volumes")]
    unmodelled += [f"container {k}" for k in main if k not in GENERATED_CONTAINER_KEYS]
    unmodelled += [f"component {k}" for k in c if k not in ("name", "type", "replicas", "podTemplate", "multinode")]
    if len(containers) > 1:
        unmodelled.append("containers other than main")
    module, argv = _command(_words(main), path)
    return Component(
        name=str(c.get("name", "")),
        kind=str(c.get("type", "")),
        role="",
        path=path,
        replicas=int(c.get("replicas", 1)),
        image=main.get("image"),
        module=module,
        argv=argv,
        env={str(e.get("name")): str(e.get("value", "")) for e in main.get("env") or []},
        secret=secret,
        gpus=int(limits.get("nvidia.com/gpu", 0)),
        node_count=int((c.get("multinode") or {}).get("nodeCount", 1)),
        working_dir=main.get("workingDir"),
        mounts=list(main.get("volumeMounts") or []),
        volumes=list(pod.get("volumes") or []),
        unmodelled=unmodelled,
    )


def _component_v1alpha1(name: str, s: dict, path: YamlPath) -> Component:
    extra = s.get("extraPodSpec") or {}
    main = extra.get("mainContainer") or {}
    limits = (s.get("resources") or {}).get("limits") or {}
    known = {"componentType", "subComponentType", "replicas", "resources", "extraPodSpec", "envs", "envFromSecret"}
    unmodelled = [f"service {k}" for k in s if k not in known | {"dynamoNamespace"}]
    unmodelled += [f"extraPodSpec.{k}" for k in extra if k not in ("mainContainer", "volumes")]
    unmodelled += [f"mainContainer {k}" for k in main if k not in GENERATED_CONTAINER_KEYS | {"workingDir"}]
    module, argv = _command(_words(main), path)
    kind = str(s.get("componentType", ""))
    sub = s.get("subComponentType")
    return Component(
        name=name,
        kind=str(sub) if kind == "worker" and sub else kind,
        role="",
        path=path,
        replicas=int(s.get("replicas", 1)),
        image=main.get("image"),
        module=module,
        argv=argv,
        env={str(e.get("name")): str(e.get("value", "")) for e in s.get("envs") or []},
        secret=s.get("envFromSecret"),
        gpus=int(limits.get("gpu", 0)),
        node_count=int((s.get("multinode") or {}).get("nodeCount", 1)),
        working_dir=main.get("workingDir"),
        mounts=list(main.get("volumeMounts") or []),
        volumes=list(extra.get("volumes") or []),
        unmodelled=unmodelled,
    )


class _UnsplittableCommand(ValueError):
    def __init__(self, reason: str, path: YamlPath):
        super().__init__(reason)
        self.path = path


def _words(container: dict) -> list[str]:
    """A container's command and args, as the text Kubernetes passes (it wants strings; YAML numbers read as
    their text)."""
    return [str(word) for word in [*(container.get("command") or []), *(container.get("args") or [])]]


def _command(tokens: list[str], path: YamlPath) -> tuple[str | None, list[str]]:
    """(python module, its arguments) of a container's command + args; `/bin/sh -c "..."` is split like sh."""
    if len(tokens) >= 3 and tokens[0] in ("/bin/sh", "sh", "/bin/bash", "bash") and tokens[1] == "-c":
        try:
            tokens = shlex.split(" ".join(tokens[2:]))
        except ValueError as exc:  # an unclosed quote: sh would refuse the line too
            raise _UnsplittableCommand(str(exc), path) from None
    if "-m" in tokens:
        at = tokens.index("-m")
        if at + 1 < len(tokens):
            return tokens[at + 1], tokens[at + 2 :]
    return None, tokens


def parse_flags(argv: Sequence[str]) -> list[tuple[str, str]]:
    """``--a 1 --b --c=x`` -> [(--a, 1), (--b, ""), (--c, x)], in order; stray words are kept as flags."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--") and "=" in token:
            flag, value = token.split("=", 1)
            out.append((flag, value))
        elif token.startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out.append((token, argv[i + 1]))
            i += 1
        else:
            out.append((token, ""))
        i += 1
    return out


def _assign_roles(comps: list[Component]) -> None:
    for c in comps:
        flags = dict(parse_flags(c.argv))
        kind = MODULES.get(c.module or "", c.kind)
        if kind == "worker" or c.kind in WORKER_ROLES:
            mode = flags.get("--disaggregation-mode") or (c.kind if c.kind in WORKER_ROLES else "agg")
            c.role = OLD_DISAGG_MODE.get(mode, mode)
        else:
            c.role = kind or c.kind


def engine_values(c: Component, sources: Sources) -> dict[str, Any] | None:
    """The engine config a worker's --extra-engine-args names, parsed and shape-checked: from a mounted
    ConfigMap, or a file given beside the DGD with the same name; None when it lives only in the image."""
    path = dict(parse_flags(c.argv)).get("--extra-engine-args")
    if not path:
        return None
    text = mounted_text(c, sources, path)
    if text is not None:
        return engine_config(text)
    return sources.engine_files.get(posixpath.basename(path))


def mounted_text(c: Component, sources: Sources, path: str) -> EngineText | None:
    """The text of the file at ``path`` in ``c``'s container when a ConfigMap given to the import is mounted
    there; None otherwise."""
    if not path.startswith("/"):
        path = posixpath.normpath(posixpath.join(c.working_dir or "/", path))
    volumes = {v.get("name"): v for v in c.volumes}
    for mount in c.mounts:
        config_map = (volumes.get(mount.get("name")) or {}).get("configMap") or {}
        data = sources.config_maps.get(str(config_map.get("name")))
        if data is None:
            continue
        mount_path = str(mount.get("mountPath", "")).rstrip("/")
        key = str(mount["subPath"]) if mount.get("subPath") and path == mount_path else None
        if key is None and path.startswith(mount_path + "/"):
            key = path[len(mount_path) + 1 :]
        if key is not None:
            return data.get(key)
    return None


# The KV router's weights as Dynamo 1.6's default policy names them in a --router-policy-config file, and
# the flags that carried them before (compared as those flags, whichever spelling the DGD uses).
POLICY_PARAMETER_FLAGS = {
    "overlap_score_credit": "--router-kv-overlap-score-credit",
    "router_temperature": "--router-temperature",
}


def _policy_flags(c: Component, sources: Sources, flags: dict[str, str]) -> None:
    """A frontend's --router-policy-config read back into the weight flags it stands for: its one instance's
    parameters; left as it is when the file is not given or holds more than dyncc writes."""
    path = flags.get("--router-policy-config")
    mounted = mounted_text(c, sources, path) if path else None
    text = mounted.text if mounted is not None else None
    try:
        document = yaml.safe_load(text) if text is not None and len(text) < 65536 else None
    except yaml.YAMLError:
        return
    instances = (
        ((document or {}).get("worker_selection") or {}).get("instances") if isinstance(document, dict) else None
    )
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return
    parameters = instances[0].get("parameters") or {}
    if not isinstance(parameters, dict) or not set(parameters) <= set(POLICY_PARAMETER_FLAGS):
        return
    for name, value in parameters.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flags.setdefault(POLICY_PARAMETER_FLAGS[name], repr(float(value)))
    flags.pop("--router-policy-config")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def facts(sources: Sources) -> DgdFacts:
    """What the round trip compares, per role."""
    comps = components(sources.dgd, sources.dgd_source)
    _assign_roles(comps)
    roles: dict[str, RoleFacts] = {}
    for c in comps:
        flags = _normalized_flags(c)
        if c.role == "frontend":
            _policy_flags(c, sources, flags)
        config = engine_values(c, sources) if c.role in WORKER_ROLES else None
        engine = flatten(config) if config is not None else None
        env = {**_global_env(sources.dgd), **c.env}
        if c.role == "frontend":
            env = {k: v for k, v in env.items() if k not in ENV_FLAGS}  # compared as flags
        roles[c.role] = RoleFacts(c.replicas, c.gpus * c.node_count, c.image, flags, engine, env)
    meta = sources.dgd.get("metadata") or {}
    return DgdFacts(str(sources.dgd.get("apiVersion", "")), str(meta.get("name", "")), roles)


def _global_env(dgd: dict) -> dict[str, str]:
    """``spec.env`` of a v1beta1 DGD: set in every component."""
    return {str(e.get("name")): str(e.get("value", "")) for e in (dgd.get("spec") or {}).get("env") or []}


def _normalized_flags(c: Component) -> dict[str, str]:
    flags = {FLAG_ALIASES.get(f, f): v for f, v in parse_flags(c.argv)}
    flags.pop("--extra-engine-args", None)  # its content is compared, not where it is mounted
    if "--model-path" in flags:  # Dynamo serves the model under its path unless told otherwise
        flags.setdefault("--served-model-name", flags["--model-path"])
    if c.role == "frontend":
        for name, flag in ENV_FLAGS.items():
            if name in c.env:
                flags.setdefault(flag, c.env[name])
    if "--disaggregation-mode" in flags:
        flags["--disaggregation-mode"] = OLD_DISAGG_MODE.get(
            flags["--disaggregation-mode"], flags["--disaggregation-mode"]
        )
    return flags


# --- the round trip's comparison --------------------------------------------------------------------


def compare(original: DgdFacts, rebuilt: DgdFacts) -> list[Difference]:
    """Every fact of the original that the rebuilt DGD does not have (values equal to the defaults aside)."""
    diffs: list[Difference] = []
    for role in sorted(set(original.roles) | set(rebuilt.roles)):
        a, b = original.roles.get(role), rebuilt.roles.get(role)
        if a is None or b is None:
            diffs.append(Difference((role, "component"), a is not None, b is not None))
            continue
        for aspect in ("replicas", "gpus", "image"):
            if getattr(a, aspect) != getattr(b, aspect):
                diffs.append(Difference((role, aspect), getattr(a, aspect), getattr(b, aspect)))
        # Environment lost, not environment dyncc adds (its own settings: DYN_SYSTEM_ENABLED, ...).
        diffs += [Difference((role, "env", k), v, b.env.get(k)) for k, v in sorted(a.env.items()) if b.env.get(k) != v]
        defaults = DEFAULT_FLAGS.get("frontend" if role == "frontend" else "worker", {})
        diffs += _compare_maps((role, "flag"), a.flags, b.flags, defaults)
        if a.engine is None:
            if b.engine is not None and role in WORKER_ROLES:
                diffs.append(Difference((role, "engine", "*"), None, "written by dyncc"))
        elif b.engine is not None:
            diffs += _compare_maps((role, "engine"), a.engine, b.engine, DEFAULT_ENGINE)
    return diffs


def _compare_maps(prefix: DiffKey, a: Mapping[str, Any], b: Mapping[str, Any], defaults: Mapping[str, Any]) -> list:
    out = []
    missing = object()
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key, missing), b.get(key, missing)
        if left == right:
            continue
        if key in defaults and {_norm(v) for v in (left, right) if v is not missing} == {_norm(defaults[key])}:
            continue
        out.append(Difference((*prefix, key), None if left is missing else left, None if right is missing else right))
    return out


def _norm(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


def covered(diff: Difference, notes: Iterable[ImportNote]) -> bool:
    """Whether a warning accounts for the difference: it names the fact, or the whole aspect with `*`."""
    for note in notes:
        for key in note.covers:
            if key == diff.key or (key[-1] == "*" and diff.key[: len(key) - 1] == key[:-1]):
                return True
    return False


# --- turning the facts into a spec ------------------------------------------------------------------


class _Importer:
    def __init__(self, sources: Sources):
        self.sources = sources
        self.notes: list[ImportNote] = []
        self.spec: dict[str, Any] = {}

    def warn(self, code: str, message: str, hint: str, path: YamlPath, *covers: DiffKey) -> None:
        self.notes.append(ImportNote(Diagnostic(code, message, path=path, hint=hint, severity="warning"), covers))

    def run(self) -> dict[str, Any]:
        dgd = self.sources.dgd
        api = str(dgd.get("apiVersion", ""))
        meta = dgd.get("metadata") or {}
        spec = self.spec
        spec.update({"apiVersion": "dyncc/v1", "name": str(meta.get("name", "imported"))})
        if api.endswith("/v1alpha1"):
            # The v1alpha1 manifests are the 2025 stack's: its flags (--publish-events-and-metrics,
            # --disaggregation-strategy) exist only in the 0.x profile.
            spec["dynamo"] = {"version": "0.5.1"}
            spec["k8s"] = {"api_version": "v1alpha1"}
        comps = components(dgd, self.sources.dgd_source)
        _assign_roles(comps)
        spec["model"] = {}
        spec["pools"] = {}
        self._top_level(dgd)
        for c in comps:
            if c.role == "frontend":
                self._frontend(c)
            elif c.role == "planner":
                self._planner(c)
            elif c.role in WORKER_ROLES:
                self._worker(c)
            else:
                self.warn(
                    "DYN963",
                    f"component {c.name} of type {c.kind or '?'} is not one dyncc deploys; it is not imported",
                    "deploy it beside dyncc's manifests",
                    c.path,
                    (c.role, "*"),
                )
        self._image(comps)
        self._secret(comps)
        self._volumes(comps)
        self._cluster(comps)
        cache = (self.spec.get("k8s") or {}).get("model_cache") or {}
        for file, kind, name in self.sources.others:
            used = kind == "PersistentVolumeClaim" and name == cache.get("pvc")
            self.warn(
                "DYN958",
                f"{kind} {name} ({file}) is not part of the DGD; it is not imported"
                + (" (the workers mount it: k8s.model_cache with create: false)" if used else ""),
                "keep applying it beside dyncc's manifests",
                (),
            )
        return spec

    def _top_level(self, dgd: dict) -> None:
        spec = dgd.get("spec") or {}
        framework = spec.get("backendFramework")
        if framework not in (None, "trtllm"):
            self.warn(
                "DYN963", f"backendFramework {framework}: dyncc deploys TensorRT-LLM", "", ("spec", "backendFramework")
            )
        known = {"components", "services", "backendFramework", "env"}
        for key in spec:
            if key not in known:
                self.warn("DYN956", f"spec.{key} is not something dyncc writes; not imported", "", ("spec", key))
        self.global_env = _global_env(dgd)

    # frontend -----------------------------------------------------------------------------------
    def _frontend(self, c: Component) -> None:
        router: dict[str, Any] = {}
        migration: dict[str, Any] = {}
        for flag, value in _normalized_flags(c).items():
            if flag == "--router-mode":
                router["mode"] = value
            elif flag == "--kv-cache-block-size":
                router["block_size"] = self._number(c, flag, value, int)
            elif flag == "--router-temperature":
                router["temperature"] = self._number(c, flag, value, float)
            elif flag == "--router-kv-overlap-score-credit":
                router["overlap_score_credit"] = self._number(c, flag, value, float)
            elif flag in ("--no-kv-events", "--no-router-kv-events"):
                router["kv_events"] = False
            elif flag in ("--kv-events", "--router-kv-events"):
                router["kv_events"] = True
            elif flag == "--router-replica-sync":
                router["replica_sync"] = True
            elif flag == "--router-conditional-disagg":
                router["conditional_disagg"] = True
            elif flag == "--migration-limit":
                migration["limit"] = self._number(c, flag, value, int)
            elif flag == "--migration-max-seq-len":
                migration["max_seq_len"] = self._number(c, flag, value, int)
            elif flag == "--namespace":
                self.spec["namespace"] = value
            elif flag == "--http-port" and value == "8000":
                pass
            else:
                self.warn(
                    "DYN955",
                    f"frontend flag {flag} {value}".rstrip() + " is not modelled by dyncc; dropped",
                    "if it matters, ask for it in dyncc's spec; set it by hand after building meanwhile",
                    c.path,
                    ("frontend", "flag", flag),
                )
        if router:
            self.spec["router"] = router
        if migration:
            self.spec["migration"] = migration
        self._lost_env(c, set(ENV_FLAGS))
        self._lost_pod_settings(c)
        if c.replicas != 1:
            self.warn(
                "DYN963",
                f"the frontend runs {c.replicas} replicas; dyncc deploys one",
                "scale the frontend component after deploying",
                c.path + ("replicas",),
                ("frontend", "replicas"),
            )

    # planner ------------------------------------------------------------------------------------
    def _planner(self, c: Component) -> None:
        flags = dict(parse_flags(c.argv))
        try:
            config = json.loads(flags.get("--config", "{}"))
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            config = {}
        if not isinstance(config, dict):  # the planner reads an object; anything else holds no targets
            config = {}
        ttft, itl = _milliseconds(config.get("ttft")), _milliseconds(config.get("itl"))
        interval = config.get("throughput_adjustment_interval_seconds", 60)
        if config.get("optimization_target", "sla") == "sla" and ttft and itl:
            self.spec["planner"] = {
                "enabled": True,
                "mode": "sla",
                "ttft_ms": ttft,
                "itl_ms": itl,
                # anything but a whole number of seconds is left for the spec's own check to refuse
                "adjustment_interval_s": interval,
            }
            if c.image:
                self.spec.setdefault("k8s", {})["planner_image"] = c.image
            self.warn(
                "DYN960",
                "the planner's --config is rewritten by dyncc from planner.*; other settings in it are not kept",
                "check planner.* against the original --config",
                c.path,
                ("planner", "flag", "--config"),
            )
            return
        self.warn(
            "DYN960",
            "the planner is not imported: its --config has no SLA targets (ttft, itl) dyncc's planner needs",
            "add planner: {enabled: true, ttft_ms: ..., itl_ms: ...} to the spec",
            c.path,
            ("planner", "*"),
        )

    # workers ------------------------------------------------------------------------------------
    def _worker(self, c: Component) -> None:
        role = c.role
        if role in self.spec["pools"]:
            self.warn(
                "DYN963",
                f"a second {role} component ({c.name}); dyncc has one pool per role; it is not imported",
                "merge the components into one pool (replicas)",
                c.path,
            )
            return
        pool: dict[str, Any] = {"replicas": c.replicas}
        self.spec["pools"][role] = pool
        model = self.spec["model"]
        for flag, value in parse_flags(c.argv):
            if flag in ("--model-path", "--model"):
                self._same(model, "path", value, c, flag)
            elif flag == "--served-model-name":
                self._same(model, "served_name", value, c, flag)
            elif flag in ("--extra-engine-args", "--disaggregation-mode"):
                pass
            elif flag == "--disaggregation-strategy":
                self.spec.setdefault("router", {})["disaggregation_strategy"] = value
            elif flag in ("--publish-events-and-metrics", "--publish-kv-events"):
                pool["publish_kv_events"] = True
                if flag == "--publish-events-and-metrics" and "dynamo" not in self.spec:
                    self.warn(
                        "DYN954",
                        f"{c.name}: --publish-events-and-metrics is Dynamo 0.x's flag; for 1.x dyncc writes "
                        "--publish-kv-events",
                        "nothing to do: the KV events are published as before",
                        c.path,
                        (role, "flag", flag),
                        (role, "flag", "--publish-kv-events"),
                    )
            elif flag == "--migration-limit":
                self.spec.setdefault("migration", {})["limit"] = self._number(c, flag, value, int)
            elif flag == "--namespace":
                self.spec["namespace"] = value
            elif flag == "--kv-block-size":
                pool.setdefault("engine", {})["tokens_per_block"] = self._number(c, flag, value, int)
            else:
                self.warn(
                    "DYN954",
                    f"worker flag {flag} {value}".rstrip() + f" ({c.name}) is not modelled by dyncc; dropped",
                    "if TRT-LLM reads it from the engine config, put it under engine.extra",
                    c.path,
                    (role, "flag", flag),
                )
        if not any(flag in ("--model-path", "--model") for flag, _ in parse_flags(c.argv)):
            self._default_model(c)
        gpus = c.gpus * c.node_count
        config = engine_values(c, self.sources)
        if config is None:
            pool["tensor_parallel"] = max(gpus, 1)
            block = (self.spec.get("router") or {}).get("block_size")
            if block is not None:  # the engine's block size must match the router's (DYN302)
                pool.setdefault("engine", {}).setdefault("tokens_per_block", block)
            where = dict(parse_flags(c.argv)).get("--extra-engine-args", "(none)")
            self.warn(
                "DYN953",
                f"the engine config of {c.name} ({where}) is not in the files given (it lives in the image); "
                f"dyncc writes its own, with tensor_parallel {max(gpus, 1)} from the GPU limit",
                "pass the engine YAML file (or its ConfigMap) to dyncc import as well",
                c.path,
                (role, "engine", "*"),
                (role, "flag", "--kv-block-size"),  # dyncc writes it from the engine's tokens_per_block
            )
        else:
            self._engine(pool, role, config, c, gpus)
        env = {**self.global_env, **c.env}
        if env:
            pool["env"] = env
        self._lost_pod_settings(c)

    def _default_model(self, c: Component) -> None:
        """A worker that names no model serves Dynamo's: DYN_TRTLLM_MODEL (1.x) or its default model."""
        env = {**self.global_env, **c.env}
        from_env = "dynamo" not in self.spec and env.get("DYN_TRTLLM_MODEL")
        model = from_env or DYNAMO_DEFAULT_MODEL
        self.warn(
            "DYN971",
            f"{c.name} names no --model-path: Dynamo serves {model} "
            f"({'from DYN_TRTLLM_MODEL' if from_env else 'its default'}); dyncc writes --model-path {model}",
            "check that this is the model the deployment serves; set model.path otherwise",
            c.path,
            (c.role, "flag", "--model-path"),
            (c.role, "flag", "--served-model-name"),
        )
        self._same(self.spec["model"], "path", model, c, "--model-path")

    def _number(self, c: Component, flag: str, value: str, kind: type[int] | type[float]) -> Any:
        """A flag's value as Dynamo's argument parser reads it; a value it refuses is refused here (DYN970)."""
        try:
            return kind(value)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise manifest_error(
                f"{format_yaml_path(c.path)} ({c.name}): {flag} {value!r:.80} is not {what}; Dynamo refuses it",
                c.path,
                self.sources.dgd_source,
            ) from None

    def _same(self, target: dict, key: str, value: str, c: Component, flag: str) -> None:
        if target.get(key, value) != value:
            self.warn(
                "DYN965",
                f"{c.name} uses {flag} {value}, another worker {target[key]}; dyncc serves one model",
                "split the deployment",
                c.path,
                (c.role, "flag", flag),
            )
            return
        target[key] = value

    def _engine(self, pool: dict, role: str, config: dict, c: Component, gpus: int) -> None:
        config = dict(config)
        engine = pool.setdefault("engine", {})
        extra: dict[str, Any] = {}
        take = config.pop
        # Coerced to int (or None: TensorRT-LLM's default) when the config was read (import_input).
        pool["tensor_parallel"] = _given(take("tensor_parallel_size", None), 1)
        pool["pipeline_parallel"] = _given(take("pipeline_parallel_size", None), 1)
        ep = _given(take("moe_expert_parallel_size", None), 1)
        if ep > 1:
            pool["expert_parallel"] = ep
        moe_tp = take("moe_tensor_parallel_size", None)
        if moe_tp is not None:
            pool["moe_tensor_parallel"] = moe_tp
        pool["attention_dp"] = bool(take("enable_attention_dp", False))
        if take("backend", "pytorch") not in ("pytorch", None):
            self.warn("DYN966", f"{c.name}: engine backend other than pytorch", "", c.path, (role, "engine", "backend"))
        if take("trust_remote_code", False):
            self.spec["model"]["trust_remote_code"] = True
        for key, field in (("max_batch_size",) * 2, ("max_num_tokens",) * 2, ("max_seq_len",) * 2):
            if key in config:
                engine[field] = take(key)
        if "enable_chunked_prefill" in config:
            engine["chunked_prefill"] = take("enable_chunked_prefill")
        if "disable_overlap_scheduler" in config:
            engine["overlap_scheduler"] = not take("disable_overlap_scheduler")
        elif role == "prefill":
            engine["overlap_scheduler"] = True  # dyncc's prefill default is off; the original left TRT-LLM's
        kv = dict(take("kv_cache_config", None) or {})
        for key, field in (
            ("free_gpu_memory_fraction", "free_gpu_memory_fraction"),
            ("dtype", "kv_cache_dtype"),
            ("tokens_per_block", "tokens_per_block"),
            ("enable_block_reuse", "enable_block_reuse"),
        ):
            if key in kv:
                engine[field] = kv.pop(key)
        if kv:
            extra["kv_cache_config"] = kv
        self._cuda_graphs(engine, extra, role, config)
        transceiver = dict(take("cache_transceiver_config", None) or {})
        self._transfer(transceiver, role, c)
        if transceiver:
            extra["cache_transceiver_config"] = transceiver
        extra.update(config)  # the rest passes through to TRT-LLM verbatim, as dyncc's engine.extra does
        if extra:
            engine["extra"] = extra
        if not engine:
            pool.pop("engine")
        used = pool["tensor_parallel"] * pool["pipeline_parallel"]
        if gpus and used != gpus:
            self.warn(
                "DYN962",
                f"{c.name} asks for {gpus} GPUs but its engine config uses TP x PP = {used}; dyncc gives it {used}",
                "make the GPU limit match the parallelism",
                c.path,
                (role, "gpus"),
            )

    def _cuda_graphs(self, engine: dict, extra: dict, role: str, config: dict) -> None:
        if "cuda_graph_config" not in config:
            if role == "prefill":
                engine["cuda_graphs"] = {"enabled": True}  # TRT-LLM's default; dyncc's prefill default is off
            return
        graphs = config.pop("cuda_graph_config")
        if graphs is None:
            engine["cuda_graphs"] = {"enabled": False}
            return
        graphs = dict(graphs)
        out: dict[str, Any] = {}
        for key, field in (
            ("max_batch_size", "max_batch_size"),
            ("batch_sizes", "batch_sizes"),
            ("enable_padding", "padding"),
        ):
            if key in graphs:
                out[field] = graphs.pop(key)
        engine["cuda_graphs"] = out or {"enabled": True}
        if graphs:
            extra["cuda_graph_config"] = graphs

    def _transfer(self, transceiver: dict, role: str, c: Component) -> None:
        kvt = self.spec.setdefault("kv_transfer", {})
        for key, field in (("backend", "backend"), ("max_tokens_in_buffer", "max_tokens_in_buffer")):
            if key not in transceiver:
                continue
            value = transceiver.pop(key)
            value = value.upper() if isinstance(value, str) else value
            if kvt.get(field, value) != value:
                self.warn(
                    "DYN967",
                    f"{c.name}: cache_transceiver_config.{key} {value} differs from the other pool's {kvt[field]}",
                    "prefill and decode must agree (DYN202); dyncc writes one value to both",
                    c.path,
                    (role, "engine", f"cache_transceiver_config.{key}"),
                )
                continue
            kvt[field] = value
        if role in ("prefill", "decode") and "backend" not in kvt:
            self.warn(
                "DYN968",
                f"{c.name}'s engine config sets no cache_transceiver_config.backend; dyncc writes the Dynamo "
                "version's default explicitly (without one, every disaggregated request fails)",
                "set kv_transfer.backend if another backend is meant",
                c.path,
                (role, "engine", "cache_transceiver_config.backend"),
            )
        if not kvt:
            self.spec.pop("kv_transfer")

    # the whole deployment -----------------------------------------------------------------------
    def _image(self, comps: list[Component]) -> None:
        images = [c.image for c in comps if c.image and c.role in ("frontend", *WORKER_ROLES)]
        if not images:
            return
        image = max(set(images), key=images.count)
        self.spec["image"] = image
        for c in comps:
            if c.image and c.image != image and c.role in ("frontend", *WORKER_ROLES):
                self.warn(
                    "DYN957",
                    f"{c.name} runs image {c.image}, the others {image}; dyncc deploys one image",
                    "use one image for the frontend and workers",
                    c.path,
                    (c.role, "image"),
                )

    def _secret(self, comps: list[Component]) -> None:
        secrets = {c.secret for c in comps if c.role in WORKER_ROLES}
        if secrets == {None}:
            self.spec.setdefault("k8s", {})["hf_token_secret"] = None
        elif len(secrets) == 1:
            (secret,) = secrets
            if secret != "hf-token-secret":
                self.spec.setdefault("k8s", {})["hf_token_secret"] = secret

    def _volumes(self, comps: list[Component]) -> None:
        for c in comps:
            volumes = {v.get("name"): v for v in c.volumes}
            for mount in c.mounts:
                volume = volumes.get(mount.get("name")) or {}
                if "configMap" in volume:
                    continue  # engine configs: imported as the engine settings
                claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if claim and c.role in WORKER_ROLES:
                    self.spec.setdefault("k8s", {})["model_cache"] = {
                        "pvc": claim,
                        "create": False,
                        "mount_path": mount.get("mountPath", "/models"),
                        # the original's workers fill the cache themselves (HF_HOME), with no download Job
                        "download": False,
                    }
                    continue
                self.warn(
                    "DYN956",
                    f"{c.name}: volume {mount.get('name')} at {mount.get('mountPath')} is not imported",
                    "dyncc mounts the engine config and the model cache (k8s.model_cache) only",
                    c.path,
                )

    def _cluster(self, comps: list[Component]) -> None:
        workers = [c for c in comps if c.role in WORKER_ROLES and c.role in self.spec["pools"]]
        per_pod = [c.gpus for c in workers if c.gpus]
        multinode = [c.gpus for c in workers if c.node_count > 1 and c.gpus]
        gpn = max(multinode) if multinode else max([8, *per_pod])
        total = sum(self._gpus_per_worker(c) * c.replicas for c in workers)
        self.spec["cluster"] = {"gpus_per_node": gpn, "nodes": max(1, math.ceil(total / gpn))}
        self.worst_case_nodes = sum(math.ceil(self._gpus_per_worker(c) / gpn) * c.replicas for c in workers) or 1

    def _gpus_per_worker(self, c: Component) -> int:
        pool = self.spec["pools"][c.role]
        return int(pool.get("tensor_parallel", 1)) * int(pool.get("pipeline_parallel", 1))

    def _lost_env(self, c: Component, folded: set[str]) -> None:
        lost = sorted(k for k in {**self.global_env, **c.env} if k not in folded)
        if lost:
            self.warn(
                "DYN959",
                f"{c.name}: environment {', '.join(lost)} is not imported (dyncc's spec sets worker environment only)",
                "set it by hand after building",
                c.path,
                *[("frontend", "env", k) for k in lost],
            )

    def _lost_pod_settings(self, c: Component) -> None:
        if c.unmodelled:
            self.warn(
                "DYN956",
                f"{c.name}: {', '.join(sorted(c.unmodelled))} not imported (dyncc writes the pod itself)",
                "dyncc's generated pods have their own probes, working directory and ports",
                c.path,
            )


def import_dgd(files: Sequence[str | Path], base_dir: Path | None = None) -> ImportResult:
    """The spec for the DGD in ``files``, validated; every setting it cannot carry is a warning."""
    sources = read_sources(files)
    importer = _Importer(sources)
    spec = _tidy(importer.run())
    spec, dropped = _validated(spec, importer, base_dir or Path.cwd())
    notes = tuple(importer.notes) + tuple(dropped)
    return ImportResult(spec, spec_text(spec, notes, files), notes, facts(sources))


def _given(value: Any, default: Any) -> Any:
    """An engine-config value, or TensorRT-LLM's default where the config gives none (or null)."""
    return default if value is None else value


def _milliseconds(value: Any) -> float | None:
    """A planner target: a positive, finite number of milliseconds (a JSON number, or its text); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 < number < math.inf else None


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


def _validated(spec: dict, importer: _Importer, base_dir: Path) -> tuple[dict, list[ImportNote]]:
    """Check the spec with dyncc's own pipeline. An engine.extra key dyncc refuses is dropped with a warning;
    a placement that does not fit gets the roomier cluster; anything else is an error of the import."""
    dropped: list[ImportNote] = []
    for _ in range(50):  # each round drops at least one key
        errors, added_events = _check(spec, base_dir)
        if not errors:
            return spec, dropped + [_kv_events_note(role) for role in added_events]
        engine_errors = [(d, found) for d in errors if (found := _engine_key(d.path)) is not None]
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


# The spec's engine fields and the engine-config keys the import took them from.
ENGINE_FIELD_KEYS = {
    "max_batch_size": "max_batch_size",
    "max_num_tokens": "max_num_tokens",
    "max_seq_len": "max_seq_len",
    "chunked_prefill": "enable_chunked_prefill",
    "overlap_scheduler": "disable_overlap_scheduler",
    "free_gpu_memory_fraction": "kv_cache_config.free_gpu_memory_fraction",
    "kv_cache_dtype": "kv_cache_config.dtype",
    "tokens_per_block": "kv_cache_config.tokens_per_block",
    "enable_block_reuse": "kv_cache_config.enable_block_reuse",
    "cuda_graphs": "cuda_graph_config",
}


def _engine_key(path: YamlPath) -> tuple[str, tuple[str, ...], str] | None:
    """(role, the spec path below the pool's engine, the engine-config key) of an error in imported engine values."""
    if len(path) < 4 or path[0] != "pools" or path[2] != "engine":
        return None
    below = tuple(str(p) for p in path[3:])
    if below[0] == "extra" and len(below) > 1:
        return str(path[1]), below, ".".join(below[1:])
    if below[0] in ENGINE_FIELD_KEYS:
        return str(path[1]), below[:1], ENGINE_FIELD_KEYS[below[0]]
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


# --- the round trip ---------------------------------------------------------------------------------


def round_trip(result: ImportResult, work_dir: Path) -> list[Difference]:
    """Build the imported spec for Kubernetes and compare the DGD with the original: the differences no
    warning accounts for (empty when the import lost nothing silently)."""
    from dyncc.api import build

    work_dir.mkdir(parents=True, exist_ok=True)
    spec_path = work_dir / "imported.yaml"
    spec_path.write_text(result.text, encoding="utf-8")
    built = build(spec_path, ["k8s"], work_dir / "build")
    (output,) = built.outputs
    rebuilt = facts(read_sources([output.directory / name for name in sorted(output.files)]))
    return [d for d in compare(result.facts, rebuilt) if not covered(d, result.notes)]
