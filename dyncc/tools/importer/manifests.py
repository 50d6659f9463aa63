"""Reading a DynamoGraphDeployment (v1beta1 or v1alpha1) and the engine configs it mounts into :class:`DgdFacts`:
per role, replicas, GPUs, image, worker flags and engine config, with the defaults both spellings share.
The import reads the original this way, and the round trip reads what dyncc builds the same way.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import yaml

from dyncc.diagnostics import Diagnostic, YamlPath, format_yaml_path
from dyncc.engines import Engine, engines
from dyncc.spec.input_gate import SourceMap
from dyncc.tools.import_input import EngineText, Sources, engine_config, manifest_error

DiffKey = tuple[str, ...]  # (role, aspect[, item]): ("decode", "flag", "--modality"), ("agg", "engine", "*")
WORKER_ROLES = ("agg", "prefill", "decode", "encode")
# Dynamo's own programs; a worker's is its engine's (Engine.module).
DYNAMO_MODULES = {"dynamo.frontend": "frontend", "dynamo.planner": "planner"}
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
# Values that are Dynamo's own defaults: written or left out, they mean the same (the engine's: its
# ConfigReading.defaults).
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
# Pod settings dyncc writes itself: not reported as lost.
GENERATED_CONTAINER_KEYS = {"name", "image", "command", "args", "env", "envFrom", "resources", "volumeMounts"}


class ImportNote(msgspec.Struct, frozen=True):
    """A coded warning and the facts of the original it accounts for in the round trip."""

    diagnostic: Diagnostic
    covers: tuple[DiffKey, ...] = ()


class Component(msgspec.Struct):
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


class RoleFacts(msgspec.Struct):
    replicas: int
    gpus: int  # per worker: the pod's GPU limit x nodeCount
    image: str | None
    flags: dict[str, str]  # normalized flag -> value ("" for a switch)
    engine: dict[str, Any] | None  # flattened engine config; None when the manifests do not hold it
    env: dict[str, str] = msgspec.field(default_factory=dict)  # the DGD's env, then the component's
    # The worker's engine's own defaults (flattened): a config value equal to one is the same as none.
    engine_defaults: Mapping[str, Any] = msgspec.field(default_factory=dict)


class DgdFacts(msgspec.Struct):
    api_version: str
    name: str
    roles: dict[str, RoleFacts]


class Difference(msgspec.Struct, frozen=True):
    key: DiffKey
    original: Any
    rebuilt: Any

    def __str__(self) -> str:
        return f"{'/'.join(self.key)}: {self.original!r} -> {self.rebuilt!r}"


class ImportResult(msgspec.Struct, frozen=True):
    spec: dict[str, Any]
    text: str
    notes: tuple[ImportNote, ...]
    facts: DgdFacts

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(n.diagnostic for n in self.notes)


# --- the engines the workers run ---------------------------------------------------------------------


def readable_engines() -> tuple[Engine, ...]:
    """The engines whose workers the import reads back: those that read the spec's engine section (the
    config a DGD mounts for them is what the spec's pool says)."""
    return tuple(e for e in engines() if e.configures)


def worker_engine(module: str | None) -> Engine:
    """The engine a worker's ``python3 -m MODULE`` runs; a worker whose command names none of them (the
    image's entrypoint, say) is read as the first one's."""
    readable = readable_engines()
    return next((e for e in readable if e.module == module), readable[0])


def module_kind(module: str | None) -> str | None:
    """frontend, planner or worker: what the Dynamo program a container runs is; None for another."""
    if module in DYNAMO_MODULES:
        return DYNAMO_MODULES[module]
    return "worker" if any(e.module == module for e in readable_engines()) else None


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


def assign_roles(comps: list[Component]) -> None:
    for c in comps:
        flags = dict(parse_flags(c.argv))
        kind = module_kind(c.module) or c.kind
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
    assign_roles(comps)
    roles: dict[str, RoleFacts] = {}
    for c in comps:
        flags = normalized_flags(c)
        if c.role == "frontend":
            _policy_flags(c, sources, flags)
        worker = c.role in WORKER_ROLES
        config = engine_values(c, sources) if worker else None
        engine = flatten(config) if config is not None else None
        defaults = worker_engine(c.module).config_impl().READING.defaults if worker else {}
        env = {**global_env(sources.dgd), **c.env}
        if c.role == "frontend":
            env = {k: v for k, v in env.items() if k not in ENV_FLAGS}  # compared as flags
        roles[c.role] = RoleFacts(c.replicas, c.gpus * c.node_count, c.image, flags, engine, env, defaults)
    meta = sources.dgd.get("metadata") or {}
    return DgdFacts(str(sources.dgd.get("apiVersion", "")), str(meta.get("name", "")), roles)


def global_env(dgd: dict) -> dict[str, str]:
    """``spec.env`` of a v1beta1 DGD: set in every component."""
    return {str(e.get("name")): str(e.get("value", "")) for e in (dgd.get("spec") or {}).get("env") or []}


def normalized_flags(c: Component) -> dict[str, str]:
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
