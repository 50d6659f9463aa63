"""What ``dyncc import`` reads: Kubernetes manifests and the engine configs they mount, through the input gate.

Every file goes through :mod:`dyncc.spec.input_gate` (regular files only, size, node, nesting and alias
bounds; YAML 1.1, as Kubernetes and the engine's PyYAML read it). Every document the import uses is then
checked for the shape the Kubernetes API and the engine would accept (a DGD's replicas an integer, its
env a list of name/value mappings, an engine config a mapping with integer parallel sizes, ...): a value
of another shape is a coded error (DYN970) at the manifest's file:line:col, so the importer reads only
values of the shapes it expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from dyncc.diagnostics import Diagnostic, DiagnosticError, Location, YamlPath, format_yaml_path
from dyncc.spec.input_gate import InputKind, SourceMap, load_yaml_data, load_yaml_documents, read_input

_COUNT_HINT = "a deployment's manifests hold hundreds of values; pass its DynamoGraphDeployment and ConfigMaps only"
MANIFEST = InputKind(
    "manifest",
    "DYN952",
    "pass readable Kubernetes YAML files, as `kubectl get -o yaml` writes them",
    size_code="DYN952",
    size_hint="a DynamoGraphDeployment is a few KB; pass the deployment's manifests, not a dump of the cluster",
    count_hint=_COUNT_HINT,
    yaml_version=(1, 1),
)
ENGINE_CONFIG = msgspec.structs.replace(MANIFEST, noun="engine config")

# --- the shapes read -----------------------------------------------------------------------------------


class _Shape(BaseModel):
    """A Kubernetes object's fields the import reads; the others are kept (and reported as not imported)."""

    model_config = ConfigDict(extra="allow")


Scalar = StrictStr | StrictInt | StrictFloat | StrictBool  # Kubernetes wants strings; dyncc reads them as text
Count = Annotated[StrictInt, Field(ge=0)]
GpuCount = Count | Annotated[StrictStr, Field(pattern=r"^[0-9]+$")]  # a quantity of whole GPUs ("1")


class _EnvVar(_Shape):
    name: StrictStr
    value: Scalar | None = None


class _SecretRef(_Shape):
    name: StrictStr | None = None


class _EnvFrom(_Shape):
    secretRef: _SecretRef | None = None


class _Mount(_Shape):
    name: StrictStr
    mountPath: StrictStr
    subPath: StrictStr | None = None


class _NamedRef(_Shape):
    name: StrictStr | None = None


class _ClaimRef(_Shape):
    claimName: StrictStr


class _Volume(_Shape):
    name: StrictStr
    configMap: _NamedRef | None = None
    persistentVolumeClaim: _ClaimRef | None = None


class _Limits(_Shape):
    gpu_v1beta1: GpuCount | None = Field(None, alias="nvidia.com/gpu")
    gpu_v1alpha1: GpuCount | None = Field(None, alias="gpu")


class _Resources(_Shape):
    limits: _Limits | None = None


class _Container(_Shape):
    name: StrictStr | None = None
    image: StrictStr | None = None
    command: list[Scalar] | None = None
    args: list[Scalar] | None = None
    env: list[_EnvVar] | None = None
    envFrom: list[_EnvFrom] | None = None
    resources: _Resources | None = None
    workingDir: StrictStr | None = None
    volumeMounts: list[_Mount] | None = None


class _PodSpec(_Shape):
    containers: list[_Container] | None = None
    volumes: list[_Volume] | None = None


class _PodTemplate(_Shape):
    spec: _PodSpec | None = None


class _Multinode(_Shape):
    nodeCount: Annotated[StrictInt, Field(ge=1)] | None = None


class _Component(_Shape):  # v1beta1
    name: StrictStr | None = None
    type: StrictStr | None = None
    replicas: Count | None = None
    podTemplate: _PodTemplate | None = None
    multinode: _Multinode | None = None


class _ExtraPodSpec(_Shape):
    mainContainer: _Container | None = None
    volumes: list[_Volume] | None = None


class _Service(_Shape):  # v1alpha1
    componentType: StrictStr | None = None
    subComponentType: StrictStr | None = None
    replicas: Count | None = None
    resources: _Resources | None = None
    extraPodSpec: _ExtraPodSpec | None = None
    envs: list[_EnvVar] | None = None
    envFromSecret: StrictStr | None = None
    multinode: _Multinode | None = None


class _DgdSpec(_Shape):
    components: list[_Component] | None = None
    services: dict[str, _Service] | None = None
    backendFramework: StrictStr | None = None
    env: list[_EnvVar] | None = None


class _Metadata(_Shape):
    name: StrictStr | None = None


class _Dgd(_Shape):
    apiVersion: StrictStr | None = None
    metadata: _Metadata | None = None
    spec: _DgdSpec | None = None


class _ConfigMap(_Shape):
    metadata: _Metadata | None = None
    data: dict[str, Scalar] | None = None


class _EngineConfig(_Shape):
    """The keys the import turns into spec settings, typed as the engine's own (lax) pydantic fields are:
    `"2"` is a tensor_parallel_size of 2 there too. The rest pass through to engine.extra as written."""

    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    moe_expert_parallel_size: int | None = None
    moe_tensor_parallel_size: int | None = None
    enable_attention_dp: bool | None = None
    disable_overlap_scheduler: bool | None = None
    trust_remote_code: bool | None = None
    backend: str | None = None
    kv_cache_config: dict[str, Any] | None = None
    cache_transceiver_config: dict[str, Any] | None = None
    cuda_graph_config: dict[str, Any] | None = None


# --- reading ---------------------------------------------------------------------------------------------


class EngineText(msgspec.Struct, frozen=True):
    """An engine config's text as the DGD mounts it (a ConfigMap's key) and where it came from."""

    text: str
    origin: str  # "ConfigMap NAME, key KEY (FILE)": names the ConfigMap in errors about its content


class Sources(msgspec.Struct):
    dgd: dict
    dgd_file: str
    dgd_source: SourceMap  # locates the DGD's values in its file
    config_maps: dict[str, dict[str, EngineText]]
    engine_files: dict[str, dict[str, Any]]  # basename -> engine config, from plain engine YAML files given
    others: list[tuple[str, str, str]]  # (file, kind, name) of objects that are neither


def read_sources(files: Sequence[str | Path]) -> Sources:
    """Every document of every file: one DGD, ConfigMaps, engine YAML files, and other objects; each shape
    checked (DYN970) before it is used."""
    dgds: list[tuple[str, dict, SourceMap]] = []
    config_maps: dict[str, dict[str, EngineText]] = {}
    engine_files: dict[str, dict[str, Any]] = {}
    others: list[tuple[str, str, str]] = []
    for file in files:
        raw = read_input(file, MANIFEST)
        for doc, source in load_yaml_documents(raw, str(file), MANIFEST):
            if not isinstance(doc, dict):
                continue
            kind = doc.get("kind")
            if kind == "DynamoGraphDeployment":
                dgds.append((str(file), checked(_Dgd, _without_nulls(doc), source, "DynamoGraphDeployment"), source))
            elif kind == "ConfigMap":
                config_map = checked(_ConfigMap, _without_nulls(doc), source, "ConfigMap")
                name = str((config_map.get("metadata") or {}).get("name", ""))
                config_maps[name] = {
                    str(key): EngineText(str(value), f"ConfigMap {name}, key {key} ({file})")
                    for key, value in (config_map.get("data") or {}).items()
                }
            elif kind is None and "apiVersion" not in doc:
                engine_files[Path(file).name] = engine_values(doc, source)  # an engine config YAML
            else:
                others.append((str(file), str(kind), _name_of(doc)))
    if len(dgds) != 1:
        found = ", ".join(f for f, _, _ in dgds) or "none"
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN951",
                    f"expected exactly one DynamoGraphDeployment in the files given, found {len(dgds)} ({found})",
                    hint="import one deployment at a time: its DGD, plus its ConfigMaps or engine YAML files",
                )
            ]
        )
    (dgd_file, dgd, source), *_ = dgds
    return Sources(dgd, dgd_file, source, config_maps, engine_files, others)


def engine_config(text: EngineText) -> dict[str, Any]:
    """A ConfigMap's engine config, parsed through the gate and shape-checked."""
    values, source = load_yaml_data(text.text, text.origin, ENGINE_CONFIG)
    return engine_values(values, source)


def engine_values(values: Any, source: SourceMap) -> dict[str, Any]:
    """An engine config document with the keys the import reads coerced as the engine would (DYN970 when
    it would refuse them); an empty document is an empty config."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise manifest_error(
            f"the engine config in {source.file} is a {type(values).__name__}, not a mapping of engine settings",
            (),
            source,
        )
    checked(_EngineConfig, values, source, "engine config")
    return _EngineConfig.model_validate(values).model_dump(exclude_unset=True)


def checked(shape: type[_Shape], doc: dict, source: SourceMap, what: str) -> dict:
    """``doc`` when it has ``shape``; else a DYN970 error for each value that does not, at its position."""
    try:
        shape.model_validate(doc)
    except ValidationError as exc:
        raise DiagnosticError(
            [
                _shape_diagnostic(what, tuple(p for p in error["loc"] if p != "[key]"), error["msg"], source)
                for error in exc.errors(include_url=False)[:20]
            ]
        ) from None
    return doc


def _shape_diagnostic(what: str, path: YamlPath, problem: str, source: SourceMap) -> Diagnostic:
    # Union members' names (`str`, `int`, `constrained-str`) end pydantic's locations; they are not keys.
    path = tuple(p for p in path if not (isinstance(p, str) and ("[" in p or p in _TYPE_NAMES)))
    return manifest_error(f"{what} {format_yaml_path(path)}: {problem.lower()}", path, source).diagnostics[0]


_TYPE_NAMES = {"str", "int", "float", "bool", "constrained-str", "constrained-int"}


def manifest_error(message: str, path: YamlPath, source: SourceMap | None) -> DiagnosticError:
    """A DYN970 error: a manifest value the import cannot read as Kubernetes or the engine would."""
    location = source.locate(path) if source is not None else None
    return DiagnosticError(
        [
            Diagnostic(
                "DYN970",
                message,
                path=path,
                hint="fix the manifest: Kubernetes (or the engine, for an engine config) refuses this value too",
                location=location if isinstance(location, Location) else None,
            )
        ]
    )


def _without_nulls(value: Any) -> Any:
    """Kubernetes reads a null field as an absent one; so does the import."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _name_of(doc: dict) -> str:
    metadata = doc.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""
