"""`patches` and `merge` under bounds and a policy (issue 28, issue 29 S2-03/S2-10/S2-12): bounded
evaluation (DYN550), results that break a component refused (DYN551), security-posture changes refused
unless `k8s.allow_in_patches` names them (DYN552), v1alpha1 patches applied and checked like v1beta1's, and
Kubernetes' annotation limits (DYN553, DYN554)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, REFERENCE, assert_no_traceback, cli
from k8s_schemas import dgd_errors

from dyncc.targets.k8s import crd_schema, patches


def spec_with(tmp_path: Path, k8s_text: str, base: str = "agg.yaml") -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLES / base).read_text() + k8s_text)
    return spec


def line_of(spec: Path, needle: str) -> int:
    return next(i for i, line in enumerate(spec.read_text().splitlines(), 1) if needle in line)


def build(spec: Path, out: Path):
    proc = cli("build", spec, "-t", "k8s", "-o", out)
    assert_no_traceback(proc)
    return proc


def dgd_of(out: Path) -> dict:
    return yaml.safe_load((out / "k8s" / "dynamographdeployment.yaml").read_text())


def agg_patches(*ops: str, top: str = "") -> str:
    return f"k8s:\n{top}  pools:\n    agg:\n      patches:\n" + "".join(f"        - {op}\n" for op in ops)


# --- bounded evaluation -------------------------------------------------------------------------------------


def test_copy_amplification_is_refused_in_bounded_time_and_memory(tmp_path):
    ops = [f"{{op: copy, from: /podTemplate, path: /podTemplate/spec/c{i}}}" for i in range(18)]
    spec = spec_with(tmp_path, agg_patches(*ops))
    started = time.monotonic()
    proc = cli("validate", spec)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1 and "DYN550" in proc.stdout + proc.stderr
    assert f"{spec}:{line_of(spec, '/podTemplate/spec/c8}')}:" in proc.stdout + proc.stderr  # the 9th copy
    assert elapsed < 5, elapsed  # was 98 s and 1.4 GB before the bound


def test_the_patched_size_is_measured_before_a_copy_is_made():
    component = {"podTemplate": {"spec": {"x": ["y"] * 1000}}}
    limits = patches.Limits(nodes=1500)
    op = patches.JsonPatch.model_validate({"op": "copy", "from": "/podTemplate", "path": "/other"})
    with pytest.raises(patches.PatchTooLarge):
        patches.apply_op(component, op, limits)
    assert "other" not in component  # refused before the deep copy


@pytest.mark.parametrize(
    "ops, needle",
    [
        ([f"{{op: test, path: /replicas, value: 1}}  # {i}" for i in range(101)], "patches:"),  # too many ops
        (["{op: add, path: /podTemplate/metadata/annotations, value: {a: " + "x" * 600_000 + "}}",
          "{op: copy, from: /podTemplate/metadata/annotations, path: /podTemplate/metadata/labels}"], "op: copy"),
    ],
    ids=["operations", "text"],
)  # fmt: skip
def test_other_bounds(tmp_path, ops, needle):
    spec = spec_with(tmp_path, agg_patches(*ops))
    proc = cli("validate", spec)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "DYN550" in output, output
    assert f"{spec}:{line_of(spec, needle)}:" in output


def test_nesting_is_bounded():
    deep: dict = {}
    node = deep
    for _ in range(70):
        node["a"] = {}
        node = node["a"]
    assert patches.check_size({"x": deep}) is not None and "levels" in str(patches.check_size({"x": deep}))
    assert patches.check_size({"x": {"a": 1}}) is None


# --- results that break a component -------------------------------------------------------------------------

BREAKING = [
    ("{op: remove, path: /podTemplate/spec/containers/0/command}", "`command` is removed"),
    ("{op: replace, path: /type, value: planner}", "`type` changes"),
    ("{op: replace, path: /name, value: other}", "`name` changes"),
    ("{op: replace, path: '/podTemplate/spec/containers/0/resources/limits/nvidia.com~1gpu', value: '0'}", "GPU limit"),
    ("{op: remove, path: /podTemplate/spec/volumes/0}", "volume 'engine-config' is gone"),
    ("{op: remove, path: /podTemplate/spec/containers/0/volumeMounts}", "mount 'engine-config'"),
    ("{op: add, path: /podTemplate/spec/initContainers, value: [{name: main, image: busybox}]}", "two containers"),
    ("{op: remove, path: /podTemplate/spec/containers/0}", "no `main` container"),
]


@pytest.mark.parametrize("op, what", BREAKING, ids=[w for _, w in BREAKING])
def test_a_patch_that_breaks_the_worker_is_refused_at_its_line(tmp_path, op, what):
    # `image` allowed: the breakage is refused whatever the spec allows
    spec = spec_with(tmp_path, agg_patches(op, top="  allow_in_patches: [image, command]\n"))
    proc = build(spec, tmp_path / "o")
    assert proc.returncode == 1 and "error DYN551" in proc.stderr and what in proc.stderr, proc.stderr
    assert f"{spec}:{line_of(spec, op[:30])}:" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_a_merge_that_replaces_the_containers_list_is_refused(tmp_path):
    spec = spec_with(
        tmp_path,
        "k8s:\n  pools:\n    agg:\n      merge:\n        podTemplate:\n          spec:\n"
        "            containers: [{name: main, image: busybox}]\n",
    )
    proc = build(spec, tmp_path / "o")
    assert proc.returncode == 1
    for what in ("`command` is removed", "`args` is removed", "GPU limit", "mount 'engine-config'"):
        assert what in proc.stderr, what
    assert "error DYN552" in proc.stderr and "busybox" in proc.stderr  # and the image swap
    assert f"{spec}:{line_of(spec, 'containers: [')}:" in proc.stderr


def test_the_frontend_without_its_command_is_refused(tmp_path):
    spec = spec_with(
        tmp_path,
        "k8s:\n  frontend:\n    patches:\n      - {op: remove, path: /podTemplate/spec/containers/0/command}\n"
        "      - {op: remove, path: /podTemplate/spec/containers/0/args}\n",
    )
    proc = build(spec, tmp_path / "o")
    assert proc.returncode == 1 and proc.stderr.count("error DYN551: the patches break the frontend") == 2


# --- security posture ---------------------------------------------------------------------------------------

POSTURE = [
    ("image", "{op: replace, path: /podTemplate/spec/containers/0/image, value: 'mirror.local/dynamo:1.6.1'}"),
    ("image", "{op: add, path: /podTemplate/spec/containers/-, value: {name: side, image: busybox}}"),
    ("command", "{op: replace, path: /podTemplate/spec/containers/0/command, value: [sh, -c, 'exec python3 \"$@\"']}"),
    ("privileged", "{op: add, path: /podTemplate/spec/containers/0/securityContext, value: {privileged: true}}"),
    ("capabilities",
     "{op: add, path: /podTemplate/spec/containers/0/securityContext, value: {capabilities: {add: [SYS_ADMIN]}}}"),
    ("host_path", "{op: add, path: /podTemplate/spec/volumes/-, value: {name: host, hostPath: {path: /}}}"),
    ("host_network", "{op: add, path: /podTemplate/spec/hostNetwork, value: true}"),
    ("host_pid", "{op: add, path: /podTemplate/spec/hostPID, value: true}"),
    ("host_ipc", "{op: add, path: /podTemplate/spec/hostIPC, value: true}"),
]  # fmt: skip


@pytest.mark.parametrize("kind, op", POSTURE, ids=[f"{k}-{i}" for i, (k, _) in enumerate(POSTURE)])
def test_a_posture_change_is_refused_unless_the_spec_allows_it(tmp_path, kind, op):
    spec = spec_with(tmp_path, agg_patches(op))
    proc = build(spec, tmp_path / "refused")
    assert (
        proc.returncode == 1
        and "error DYN552" in proc.stderr
        and f"add `{kind}` to k8s.allow_in_patches" in (proc.stderr)
    )
    assert f"{spec}:{line_of(spec, op[:40])}:" in proc.stderr and "DYN551" not in proc.stderr
    allowed = spec_with(tmp_path, agg_patches(op, top=f"  allow_in_patches: [{kind}]\n"))
    proc = build(allowed, tmp_path / "allowed")
    assert proc.returncode == 0, proc.stderr
    dgd = dgd_of(tmp_path / "allowed")
    assert crd_schema.errors(dgd) == []
    if REFERENCE.exists():
        assert dgd_errors(dgd) == []
    worker = next(c for c in dgd["spec"]["components"] if c["name"] == "worker")
    written = yaml.safe_load(op)
    if written["path"].endswith("/-"):
        assert patches._get(worker, written["path"][:-2])[-1] == written["value"]
    else:
        assert patches._get(worker, written["path"]) == written["value"]


def test_typed_security_settings_need_no_opt_in(tmp_path):
    spec = spec_with(
        tmp_path,
        "k8s:\n  defaults:\n    security_context: {privileged: true, capabilities: {add: [IPC_LOCK]}}\n"
        "  pools:\n    agg:\n      volumes: [{name: host, mount_path: /host, host_path: /data}]\n"
        "      patches:\n        - {op: add, path: /podTemplate/spec/dnsPolicy, value: ClusterFirst}\n",
    )
    assert build(spec, tmp_path / "o").returncode == 0


# --- v1alpha1: patches applied and checked ------------------------------------------------------------------


def test_v1alpha1_patches_and_merge_are_applied(tmp_path):
    spec = spec_with(
        tmp_path,
        "k8s:\n  api_version: v1alpha1\n  pools:\n    agg:\n      merge: {extraPodMetadata: {labels: {site: a}}}\n"
        "      patches:\n        - {op: add, path: /extraPodSpec/mainContainer/ports, value: [{containerPort: 5000}]}\n",
    )
    assert build(spec, tmp_path / "o").returncode == 0
    dgd = dgd_of(tmp_path / "o")
    worker = dgd["spec"]["services"]["TRTLLMWorker"]
    assert worker["extraPodSpec"]["mainContainer"]["ports"] == [{"containerPort": 5000}]
    assert worker["extraPodMetadata"]["labels"]["site"] == "a"
    assert crd_schema.errors(dgd) == []
    if REFERENCE.exists():
        assert dgd_errors(dgd) == []


@pytest.mark.parametrize(
    "k8s_text, code, needle",
    [
        ("      patches:\n        - {op: add, path: /extraPodSpec/hostIPCC, value: true}\n", "DYN540", "hostIPCC"),
        ("      patches:\n        - {op: remove, path: /nope}\n", "DYN541", "/nope"),
        ("      merge: {extraPodSpec: {mainContainer: null}}\n", "DYN551", "mainContainer"),
        (
            "      patches:\n        - {op: add, path: /extraPodSpec/hostNetwork, value: true}\n",
            "DYN552",
            "hostNetwork",
        ),
        (
            "      patches:\n        - {op: replace, path: /dynamoNamespace, value: shared}\n",
            "DYN551",
            "dynamoNamespace",
        ),
    ],
)
def test_v1alpha1_patches_are_refused_like_v1beta1s(tmp_path, k8s_text, code, needle):
    spec = spec_with(tmp_path, "k8s:\n  api_version: v1alpha1\n  pools:\n    agg:\n" + k8s_text)
    proc = build(spec, tmp_path / "o")
    assert proc.returncode == 1 and f"error {code}" in proc.stderr, proc.stderr
    assert f"{spec}:{line_of(spec, needle)}:" in proc.stderr


# --- annotation limits --------------------------------------------------------------------------------------


def test_a_300_kb_dgd_annotation_is_refused(tmp_path):
    spec = spec_with(tmp_path, f"k8s:\n  annotations: {{a: {'x' * 300_000}}}\n")
    proc = build(spec, tmp_path / "o")
    assert proc.returncode == 1 and "error DYN553" in proc.stderr and "256 KiB" in proc.stderr
    assert f"{spec}:{line_of(spec, 'annotations:')}:" in proc.stderr


def test_pod_annotations_over_the_limit_are_refused_where_they_are_set(tmp_path):
    spec = spec_with(
        tmp_path,
        f"k8s:\n  defaults:\n    annotations: {{a: {'x' * 200_000}}}\n  frontend:\n    annotations: {{b: {'y' * 70_000}}}\n",
    )
    proc = build(spec, tmp_path / "o")
    assert proc.returncode == 1 and proc.stderr.count("error DYN553") == 1  # only the frontend's pods: 270 KB
    assert f"{spec}:{line_of(spec, 'annotations: {b:')}:" in proc.stderr and "component 'frontend'" in proc.stderr


def test_a_dgd_too_large_for_client_side_apply_warns(tmp_path):
    spec = spec_with(tmp_path, f"k8s:\n  defaults:\n    annotations: {{a: {'x' * 150_000}}}\n")  # x 2 components
    proc = cli("validate", "-t", "k8s", spec)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "warning DYN554" in output and "--server-side" in output, output
    assert build(spec, tmp_path / "o").returncode == 0  # valid: server-side apply takes it
