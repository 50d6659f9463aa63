"""`validate` and `build -t all` refuse the same specs, with the same codes: every example (valid and
invalid), and specs only a target's checks or its rendered output refuse. (`validate` also checks a
`sweep:`'s points, which `build` does not build: tests/test_sweep.py.) The language server reports what
`validate` reports: tests/test_lsp.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import EXAMPLES, INVALID_EXAMPLES, VALID_EXAMPLES, cli

HEAD = "apiVersion: dyncc/v1\nname: {name}\nmodel: {{path: m, moe: false}}\npools: {{agg: {{}}}}\n"
# Specs the loader and the rules accept, that a target refuses: `build -t all` skipped such a target with
# a note and exited 0 where `validate` exited 1 (DYN504), or only rendering showed the problem (DYN513).
TARGET_ONLY = {
    "k8s-name-too-long": HEAD.format(name="a" * 60) + "sweep:\n  pools.agg.replicas: [1, 2, 3]\n",
    "sbatch-option-line": HEAD.format(name="adv") + "slurm: {extra_sbatch: ['--comment=a;id']}\n",
    "k8s-job-over-etcd-limit": HEAD.format(name="adv") + "benchmark: {concurrency: [" + ",".join(["1"] * 9000) + "]}\n",
}


def _validate_errors(spec: Path) -> tuple[int, set[str]]:
    proc = cli("validate", "--format", "json", spec)
    diagnostics = json.loads(proc.stdout)["files"][0]["diagnostics"]
    return proc.returncode, {d["code"] for d in diagnostics if d["severity"] == "error"}


def _build_errors(spec: Path, out: Path) -> tuple[int, set[str]]:
    proc = cli("build", spec, "-t", "all", "-o", out)
    return proc.returncode, set(re.findall(r"error (DYN\d{3})", proc.stderr))


def _agree(spec: Path, out: Path) -> set[str]:
    checked, built = _validate_errors(spec), _build_errors(spec, out)
    assert checked == built, f"validate exits {checked[0]} {sorted(checked[1])}, build {built[0]} {sorted(built[1])}"
    return checked[1]


@pytest.mark.parametrize(
    "spec",
    [p for p in VALID_EXAMPLES + INVALID_EXAMPLES if not p.name.startswith("DYN804")],  # a sweep's points
    ids=lambda p: str(p.relative_to(EXAMPLES)),
)
def test_validate_and_build_all_agree_on_every_example(spec: Path, tmp_path: Path):
    _agree(spec, tmp_path / "out")


@pytest.mark.parametrize("case", sorted(TARGET_ONLY))
def test_a_target_refusal_fails_build_all_as_it_fails_validate(case: str, tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TARGET_ONLY[case])
    assert _agree(spec, tmp_path / "out")  # both refuse, with the same codes
    assert not (tmp_path / "out").exists()  # a refused build writes nothing
