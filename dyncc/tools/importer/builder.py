"""Turning a DGD's facts into a spec, role by role: what the spec can say is carried over, and everything
it cannot is an :class:`~dyncc.tools.importer.manifests.ImportNote` (DYN951-DYN969), never dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from dyncc.diagnostics import Diagnostic, YamlPath, format_yaml_path
from dyncc.engines import Engine
from dyncc.engines.base import ConfigReading
from dyncc.tools.import_input import Sources, manifest_error
from dyncc.tools.importer.manifests import (
    ENV_FLAGS,
    WORKER_ROLES,
    Component,
    DiffKey,
    ImportNote,
    assign_roles,
    components,
    engine_values,
    global_env,
    normalized_flags,
    parse_flags,
    readable_engines,
    worker_engine,
)

# --- turning the facts into a spec ------------------------------------------------------------------


class SpecBuilder:
    def __init__(self, sources: Sources):
        self.sources = sources
        self.notes: list[ImportNote] = []
        self.spec: dict[str, Any] = {}
        self.engines: dict[str, Engine] = {}  # role -> the engine its workers run

    def warn(self, code: str, message: str, hint: str, path: YamlPath, *covers: DiffKey) -> None:
        # A path into the DGD (spec.components[1], spec.backendFramework) is located in its file; the others
        # name the imported spec's settings, which have no place in the manifest.
        where = self.sources.dgd_source.locate(path) if path[:1] in (("spec",), ("metadata",)) else None
        diagnostic = Diagnostic(code, message, path=path, hint=hint, severity="warning", location=where)
        self.notes.append(ImportNote(diagnostic, covers))

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
        assign_roles(comps)
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
        self._env_the_cache_sets()
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
        readable = readable_engines()
        if framework not in (None, *(e.dgd_backend for e in readable)):
            deploys = " or ".join(e.label for e in readable)
            self.warn(
                "DYN963", f"backendFramework {framework}: dyncc deploys {deploys}", "", ("spec", "backendFramework")
            )
        known = {"components", "services", "backendFramework", "env"}
        for key in spec:
            if key not in known:
                self.warn("DYN956", f"spec.{key} is not something dyncc writes; not imported", "", ("spec", key))
        self.global_env = global_env(dgd)

    # frontend -----------------------------------------------------------------------------------
    def _frontend(self, c: Component) -> None:
        router: dict[str, Any] = {}
        migration: dict[str, Any] = {}
        for flag, value in normalized_flags(c).items():
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
        runtime = self.engines[role] = worker_engine(c.module)
        reading = runtime.config_impl().READING
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
                    f"if {runtime.label} reads it from the engine config, put it under engine.extra",
                    c.path,
                    (role, "flag", flag),
                )
        if not any(flag in ("--model-path", "--model") for flag, _ in parse_flags(c.argv)):
            self._default_model(c, reading)
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
            self._engine(pool, config, c, gpus, runtime)
        env = {**self.global_env, **c.env}
        if env:
            pool["env"] = env
        self._lost_pod_settings(c)

    def _default_model(self, c: Component, reading: ConfigReading) -> None:
        """A worker that names no model serves its engine's: the one its environment names (1.x), else its
        default model."""
        env = {**self.global_env, **c.env}
        from_env = "dynamo" not in self.spec and env.get(reading.model_env)
        model = from_env or reading.default_model
        self.warn(
            "DYN971",
            f"{c.name} names no --model-path: Dynamo serves {model} "
            f"({f'from {reading.model_env}' if from_env else 'its default'}); dyncc writes --model-path {model}",
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

    def _engine(self, pool: dict, config: dict, c: Component, gpus: int, runtime: Engine) -> None:
        """The worker's engine config, read back by its engine, as the pool's settings."""
        role = c.role
        engine = pool.setdefault("engine", {})
        impl = runtime.config_impl()
        read = impl.read_config(config, role)
        pool.update(read.pool)
        for key, what in read.unsupported:
            self.warn("DYN966", f"{c.name}: {what}", "", c.path, (role, "engine", key))
        self.spec["model"].update(read.model)
        engine.update(read.engine)
        self._transfer(read.transfer, impl.READING.transfer_keys, c)
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

    def _transfer(self, transfer: dict[str, Any], keys: Mapping[str, str], c: Component) -> None:
        """The pools' KV-transfer settings (``keys``: the engine-config key each is read from) as the spec's
        one ``kv_transfer``: prefill and decode must agree."""
        role = c.role
        kvt = self.spec.setdefault("kv_transfer", {})
        for field, value in transfer.items():
            if kvt.get(field, value) != value:
                self.warn(
                    "DYN967",
                    f"{c.name}: {keys[field]} {value} differs from the other pool's {kvt[field]}",
                    "prefill and decode must agree (DYN202); dyncc writes one value to both",
                    c.path,
                    (role, "engine", keys[field]),
                )
                continue
            kvt[field] = value
        if role in ("prefill", "decode") and "backend" not in kvt:
            self.warn(
                "DYN968",
                f"{c.name}'s engine config sets no {keys['backend']}; dyncc writes the Dynamo "
                "version's default explicitly (without one, every disaggregated request fails)",
                "set kv_transfer.backend if another backend is meant",
                c.path,
                (role, "engine", keys["backend"]),
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

    def _env_the_cache_sets(self) -> None:
        """HF_HOME at the model cache's mount path is what k8s.model_cache sets in the workers: not carried
        over, so the spec says it once (dyncc would write it once either way; another value is DYN525)."""
        mount_path = ((self.spec.get("k8s") or {}).get("model_cache") or {}).get("mount_path")
        for pool in self.spec["pools"].values():
            env = pool.get("env") or {}
            if mount_path is not None and env.get("HF_HOME") == mount_path:
                del env["HF_HOME"]
                if not env:
                    del pool["env"]

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


def _milliseconds(value: Any) -> float | None:
    """A planner target: a positive, finite number of milliseconds (a JSON number, or its text); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 < number < math.inf else None
