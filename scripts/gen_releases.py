#!/usr/bin/env python3
"""Writes dyncc/releases/data/dynamo-<version>.json, one file per Dynamo release, from the flag data of the
release wheels.

    python3 scripts/gen_releases.py [--flags FILE]

FILE is ../shared/reference/dynamo-releases.json, or what `scripts/release_flags.py VERSION` prints for a new
release (the same shape: {"<version>": {"trtllm_pin", "worker_flags", "frontend_flags", "mocker_flags"}}).
The next release is therefore one command over its wheels, this script, and one reviewed file.

What each file holds: the TensorRT-LLM the release pins, and the worker, frontend and mock-engine flags as the
release's own parsers declare them (option strings, aliases, kind, type, nargs, choices, default, deprecation).
Help text and env var names are left out: nothing in dyncc reads them. Facts the parsers do not show (the
Kubernetes API version, the planner's image, the KV transfer default, ...) come from DOCUMENTED below, each
with the first release it holds for and where it was read; a file gets the value of the newest boundary at or
before its release.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "dyncc" / "releases" / "data"
DEFAULT_FLAGS = ROOT.parent / "shared" / "reference" / "dynamo-releases.json"
KEPT = (
    "kind",
    "aliases",
    "deprecated_alias",
    "type",
    "nargs",
    "choices",
    "default",
    "deprecated",
    "hidden",
    "router_advert",
)
COMPONENTS = (("worker", "worker_flags"), ("frontend", "frontend_flags"), ("mocker", "mocker_flags"))

# Facts no parser shows, as (first release, value, source). Releases are ordered as PEP 440 orders them.
DOCUMENTED: dict[str, list[tuple[str, object, str]]] = {
    # A v1beta1 DGD is refused by the 1.0/1.1 operators; v1alpha1 stays served (deprecated) through 1.6.x.
    "dgd_api_version": [
        ("0.4.0", "v1alpha1", "2025 manifests (shared/reference/dynamo-2025-examples)"),
        ("1.2.0", "v1beta1", "Dynamo deprecations page, v1.2.0: DGD/DGDR promoted to v1beta1 as the served API"),
    ],
    "k8s_command_style": [
        ("0.4.0", "shell", "2025 manifests: command [/bin/sh, -c] with one args string"),
        ("1.2.0", "argv", "v1beta1 manifests (Dynamo's 1.x examples): command + argv list"),
    ],
    "planner_image": [
        ("0.4.0", "tensorrtllm-runtime", "before 1.1.0 the planner ran in the runtime image"),
        ("1.1.0", "dynamo-planner", "Dynamo releases.json, 1.1.0: planner split into its own dynamo-planner image"),
    ],
    # dyncc runs `python3 -m dynamo.planner --config` (1.0.0+; before, planner_sla.py with other flags) with
    # optimization_target and *_adjustment_interval_seconds: 1.0 ignores optimization_target and 1.0-1.1 read
    # other interval names (renamed in 1.2), so the planner dyncc writes runs as written from 1.2; `load` 1.3.
    "planner_modes": [
        ("0.4.0", [], "no dynamo.planner entry point before 1.0.0 (wheel contents)"),
        ("1.2.0", ["sla"], "planner_config.py of the wheels: optimization_target and *_seconds intervals"),
        ("1.3.0", ["sla", "load"], "planner_config.py: optimization_target load from 1.3"),
    ],
    # Written explicitly either way (unset disables KV transfer); this is the one each release's image is
    # built for. 0.7.0.post1 pins the same TensorRT-LLM (1.2.0rc3) as 0.7.1, whose upgrade made the switch.
    "transfer_default": [
        ("0.4.0", "UCX", "docs v0.7.0 kv-cache-transfer: default UCX"),
        ("0.7.0.post1", "NIXL", "docs v0.7.1/v0.8.0 kv-cache-transfer: default NIXL (PR 4645, TRT-LLM 1.2.0rc3)"),
    ],
    # Whether /health waits for the generate endpoint only when DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS says so:
    # set for every 0.x release (harmless where already the default); 1.x does it by itself (1.6.1 warns
    # that the variable is deprecated).
    "endpoint_health_env": [
        ("0.4.0", True, "0.5.1 readiness, tested here; kept for 0.x"),
        ("1.0.0", False, "1.6.1 warns the variable is deprecated; its /health follows registered endpoints"),
    ],
    # The KV router's overlap credit range its frontend enforces at start-up (null: none known). Measured with
    # each release's own frontend (tests/test_router_policy.py); 1.2.x was not run, so nothing is claimed.
    "router_credit_max": [
        ("0.4.0", None, "no range check known"),
        ("1.3.0", 1.0, "the 1.3.1 frontend refuses --router-kv-overlap-score-credit 1.5 (between 0.0 and 1.0)"),
        ("1.4.0", None, "the 1.4.2, 1.5.1 and 1.6.1 frontends start with 1.5"),
    ],
    # What DYN_TCP_RESPONSE_STREAM_HOST names. Shown by running dyncc's local deployment on each release's own
    # frontend and mock engine (tests/test_release_runs.py): with an address, an "interface" release fails
    # every model registration with "Interface not found: 127.0.0.1"; `lo` serves.
    "response_stream_host": [
        ("0.4.0", "address", "0.5.1 serves with 127.0.0.1; the 0.8.1-1.0.2 runtimes do not read the variable"),
        (
            "1.1.0",
            "interface",
            "1.1.1, 1.2.1, 1.3.1, 1.4.2, 1.5.1 runs: 'Interface not found: 127.0.0.1', `lo` serves (1.0.2's runtime "
            "has no such variable)",
        ),
        ("1.6.0", "address", "1.6.1 serves with 127.0.0.1 (tests/test_release_runs.py)"),
    ],
    # Whether a worker given a local model directory and --model-name records its files as hf://<name>/...,
    # so that the frontend reads them from the Hugging Face cache by the served name (offline: "Model
    # snapshots for '<name>' not found in cache", the model never listed). Runs as above.
    "local_model_from_hub_cache": [
        ("0.4.0", False, "0.5.1 serves the mock's model directory as written; 0.8.1 and 1.0.2 were not shown"),
        (
            "1.1.0",
            True,
            "1.1.1, 1.2.1, 1.3.1 runs: 'Model snapshots ... not found in cache' without the entry, served with it",
        ),
        ("1.4.0", False, "1.4.2, 1.5.1, 1.6.1: the frontend fetches the files from the worker's system port"),
    ],
    # DYN_EVENT_PLANE a one-node deployment with file discovery (no NATS) must set: 1.0-1.1 default the event
    # plane to NATS (their parsers); 1.2.1's frontend, left to choose, fails model registration with "KV
    # router's EventSubscriber requires NATS" (run as above); 1.3 picks ZMQ by itself.
    "event_plane_env": [
        ("0.4.0", None, "0.x discovers through etcd and publishes events on NATS, both run"),
        ("1.0.0", "zmq", "1.0.2/1.1.1 parsers: --event-plane default nats; 1.1.1 and 1.2.1 serve with zmq set"),
        ("1.3.0", None, "1.3.1's --event-plane: 'If unset, defaults to zmq for all discovery backends'; runs"),
    ],
    # What turns on a worker's health (system) server besides DYN_SYSTEM_PORT.
    "worker_env": [
        ("0.4.0", [["DYN_SYSTEM_ENABLED", "true"]], "0.4-0.6.1 serve /health only with DYN_SYSTEM_ENABLED=true"),
        ("0.7.0", [], "ai-dynamo-runtime 0.7.0: DYN_SYSTEM_ENABLED deprecated, DYN_SYSTEM_PORT alone decides"),
    ],
}


def documented(version: str) -> dict[str, object]:
    """Each documented fact as it holds for ``version``: the newest step at or before it (PEP 440 order)."""
    facts: dict[str, object] = {}
    for name, steps in DOCUMENTED.items():
        held = [step for step in steps if Version(step[0]) <= Version(version)]
        first, value, source = held[-1]
        facts[name] = {"value": value, "since": first, "source": source}
    return facts


def release_file(version: str, entry: dict, source: str) -> dict:
    out: dict = {
        "dynamo": version,
        "trtllm": entry["trtllm_pin"],
        "source": source,
    }
    for component, field in COMPONENTS:
        flags = entry[field]
        out[component] = {flag: {k: facts[k] for k in KEPT if k in facts} for flag, facts in sorted(flags.items())}
    # Module constants the parsers default to (e.g. the encode worker's endpoint), as the extraction read them.
    out["constants"] = dict(sorted(entry.get("notes", {}).get("default_constants", {}).items()))
    out["documented"] = documented(version)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=Path, default=DEFAULT_FLAGS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    data = json.loads(args.flags.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for version, entry in data.items():
        if version in ("source", "flag_help"):
            continue
        if not all(isinstance(entry.get(field), dict) for _, field in COMPONENTS):
            print(f"skipped {version}: no flags extracted (not installable from PyPI here)", file=sys.stderr)
            continue
        source = f"{args.flags.name}: the ai-dynamo {version} wheel's own parsers; documented facts as named"
        text = json.dumps(release_file(version, entry, source), indent=1, sort_keys=False) + "\n"
        (args.out / f"dynamo-{version}.json").write_text(text)
        written += 1
    print(f"wrote {written} release files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
