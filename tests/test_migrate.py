"""`dyncc migrate --to VERSION` and `dyncc diff` across Dynamo releases (issue 31).

A spec written for one release becomes a spec for another: what the release dropped is rewritten where the
rewrite keeps the deployment's behaviour, each change is listed (path, old -> new, why), and what the release
refuses is listed with exit 1 and nothing written. The result validates, and its command lines are accepted
by the release's own parsers. The old-form moves (a spec in an earlier dyncc's format) are in
test_spec_contract.py; here they are combined with a release change."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from command_lines import plan_worker_args
from conftest import EXAMPLES, ROOT, VALID_EXAMPLES, assert_no_traceback, cli
from dynamo_parsers import DYNAMO_AVAILABLE, parse_frontend, parse_trtllm
from ruamel.yaml import YAML

from dyncc.api import render_targets, validate_text
from dyncc.compiler import compile_spec
from dyncc.compiler.profiles import newest_profile, profiles
from dyncc.deployment import load_spec, load_spec_text
from dyncc.tools.migrate import migrate_file, migrate_text

DATA = Path(__file__).parent / "data"
SPEC_2025 = DATA / "migrate" / "disagg_router@0.5.1.yaml"  # a 0.5.1 deployment with the settings 1.x dropped
RELEASED = sorted((DATA / "released-specs").glob("*.yaml"))


def _codes(proc) -> set[str]:
    return {d["code"] for d in json.loads(proc.stdout)["files"][0]["diagnostics"] if d["severity"] == "error"}


def _local_files(spec: Path, out: Path, *args: str) -> dict[str, str]:
    assert cli("build", spec, "-t", "local", "-o", out, *args).returncode == 0
    return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}


def test_a_0_5_1_spec_becomes_a_valid_1_6_1_spec_with_a_readable_change_list(tmp_path):
    new = tmp_path / "new.yaml"
    proc = cli("migrate", SPEC_2025, "--to", "1.6.1", "-o", new)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    # One line per change: the path, old -> new, and why (the release's own refusal, by code).
    changes = [line.split(": ", 1)[1] for line in proc.stderr.splitlines() if line.startswith(f"{SPEC_2025}: ")]
    assert changes[0] == "dynamo.version: 0.5.1 -> 1.6.1 (the release deployed)"
    assert {line.split(" (")[0] for line in changes[1:]} == {
        "dynamo.trtllm: 1.1.0rc5 -> removed",
        "router.disaggregation_strategy: prefill_first -> removed",
        "router.reset_states: true -> removed",
        "image: nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:0.5.1 -> nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1",
    }
    strategy = next(line for line in changes if line.startswith("router.disaggregation_strategy"))
    assert "(DYN702: " in strategy and "the frontend now drives prefill, then decode" in strategy

    text = new.read_text()
    # Nothing else moved: every other line of the input is there, comments and layout included.
    dropped = {"  version: 0.5.1", "  trtllm: 1.1.0rc5  # the TensorRT-LLM 0.5.1 pins", "  reset_states: true"}
    dropped |= {"  disaggregation_strategy: prefill_first", "image: nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:0.5.1"}
    kept = [line for line in SPEC_2025.read_text().splitlines() if line not in dropped]
    assert [line for line in text.splitlines() if line in kept] == kept
    assert "  version: 1.6.1" in text.splitlines()

    check = cli("validate", "--format", "json", new)
    assert check.returncode == 0 and not _codes(check), check.stdout
    old_files = _local_files(SPEC_2025, tmp_path / "old-out")
    new_files = _local_files(new, tmp_path / "new-out")
    assert "--disaggregation-strategy prefill_first" in old_files["local/launch.sh"]  # what the test would miss
    assert "--router-reset-states" in old_files["local/launch.sh"]
    for gone in ("--disaggregation-strategy", "--router-reset-states", "--publish-events-and-metrics"):
        assert gone not in new_files["local/launch.sh"]
    # The engine settings the spec wrote survive the release change.
    prefill = YAML(typ="safe").load(new_files["local/engine/prefill.yaml"])
    assert (prefill["max_num_tokens"], prefill["max_batch_size"]) == (8192, 16)


@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_the_migrated_spec_starts_under_1_6_1s_own_parsers():
    from dyncc.targets.local import frontend_command
    from dyncc.targets.local.settings import LocalSettings

    migration = migrate_file(SPEC_2025, to="1.6.1")
    plan = compile_spec(load_spec_text(migration.text, str(SPEC_2025), SPEC_2025.parent)).plan
    command = [str(w) for w in frontend_command(plan, LocalSettings())]
    frontend = parse_frontend(command[command.index("dynamo.frontend") + 1 :])
    assert frontend.router_mode == "kv"
    for pool, _worker in plan.workers:
        config = parse_trtllm(plan_worker_args(plan, pool, model=plan.model_path))
        assert config.disaggregation_mode.name == pool.disaggregation_mode.upper()


def test_what_the_release_lacks_is_refused_with_its_line_and_nothing_is_written(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: qwen3-2026\nmodel: {path: Qwen/Qwen3-0.6B, moe: false}\n"
        "request_plane: nats\nrouter:\n  mode: kv\n  conditional_disagg: true  # only when it pays\n"
        "pools:\n  prefill: {}\n  decode: {}\n"
    )
    assert cli("validate", spec).returncode == 0
    out = tmp_path / "new.yaml"
    proc = cli("migrate", spec, "--to", "0.5.1", "-o", out)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and not out.exists(), proc.stderr
    # A plane the release uses anyway goes (listed); conditional disaggregation has no honest rewrite.
    assert f"{spec}: request_plane: nats -> removed (DYN703: " in proc.stderr
    assert f"{spec}: Dynamo 0.5.1 refuses" in proc.stderr
    assert f"{spec}:7:23: error DYN703: router.conditional_disagg" in proc.stderr
    assert "1 error(s); nothing written" in proc.stderr

    spec.write_text(spec.read_text().replace("request_plane: nats", "request_plane: tcp"))
    proc = cli("migrate", spec, "--to", "0.5.1")
    assert proc.returncode == 1 and f"{spec}:4:16: error DYN703: request_plane" in proc.stderr, proc.stderr


def test_a_setting_a_later_release_dropped_is_kept_going_down_and_refused_where_it_did_not_exist_yet():
    """Removing the router state reset is honest going up (the release's router keeps no state); going down
    to a release that predates the setting, nothing says its router keeps none: refused, not removed."""
    down = migrate_file(SPEC_2025, to="0.4.1")
    assert [(d.code, d.path) for d in down.refused] == [("DYN703", ("router", "reset_states"))]
    assert not any(line.startswith("router.reset_states") for line in down.changes)
    up = migrate_file(SPEC_2025, to="1.6.1")
    assert any(line.startswith("router.reset_states: true -> removed") for line in up.changes)


def test_a_rewrite_that_cannot_take_is_refused_not_listed_and_a_pinned_digest_stays(tmp_path):
    spec = tmp_path / "spec.yaml"
    digest = "sha256:" + "0123456789abcdef" * 4
    spec.write_text(
        "apiVersion: dyncc/v1\nname: m\ndynamo: {version: 0.5.1}\nmodel: {path: Qwen/Qwen3-0.6B, moe: false}\n"
        "pools: {agg: {}}\nrouter:\n  <<: {mode: kv, reset_states: true}  # merged in: the key is not in router\n"
        f"image: nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:0.5.1@{digest}\n"
    )
    migration = migrate_file(spec, to="1.6.1")
    assert [(d.code, d.path, d.location.line) for d in migration.refused] == [("DYN703", ("router", "reset_states"), 6)]
    assert migration.changes == ("dynamo.version: 0.5.1 -> 1.6.1 (the release deployed)",)  # nothing else took
    spec.write_text(spec.read_text().replace("  <<: {mode: kv, reset_states: true}", "  mode: kv"))
    migration = migrate_file(spec, to="1.6.1")
    assert migration.ok and f"tensorrtllm-runtime:0.5.1@{digest}" in migration.text  # the digest pins its bytes
    assert [d.code for d in migration.diagnostics if d.path == ("image",)] == ["DYN704"]  # and stays warned


RELEASES = [p.dynamo_version for p in profiles()]


@pytest.mark.parametrize("version", RELEASES)
def test_the_0_5_1_spec_to_every_release_validates_there_or_is_refused_with_codes(version):
    """No release is named in migrate: every release file dyncc has is reached the same way."""
    migration = migrate_file(SPEC_2025, to=version)
    if not migration.ok:
        assert migration.refused and not migration.invalid
        assert all(d.code.startswith("DYN") and d.location and d.location.line > 0 for d in migration.refused)
        return
    loaded = load_spec_text(migration.text, str(SPEC_2025), SPEC_2025.parent)
    assert loaded.spec.dynamo.version == version
    found = validate_text(migration.text, str(SPEC_2025), SPEC_2025.parent).diagnostics
    assert not [d for d in found if d.is_error], found
    if version != "0.5.1":
        assert migration.changes[0] == f"dynamo.version: 0.5.1 -> {version} (the release deployed)"


def test_the_newest_release_takes_the_0_5_1_spec():
    assert migrate_file(SPEC_2025, to=newest_profile().dynamo_version).ok


def test_a_release_dyncc_does_not_know_and_a_version_that_is_not_one_are_coded(tmp_path):
    proc = cli("migrate", SPEC_2025, "--to", "0.0.1", "-o", tmp_path / "new.yaml")
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "error DYN701" in proc.stderr and not (tmp_path / "new.yaml").exists()
    proc = cli("migrate", SPEC_2025, "--to", "latest")
    assert proc.returncode == 1 and "error DYN013: --dynamo-version 'latest' is not a version" in proc.stderr


def test_errors_the_spec_has_at_its_own_release_are_named_apart(tmp_path):
    spec = tmp_path / "spec.yaml"
    text = SPEC_2025.read_text().replace("  prefill:\n    replicas: 2", "  prefill:\n    replicas: 9")
    spec.write_text(text)  # 9 + 2 workers on one 8-GPU node
    proc = cli("migrate", spec, "--to", "1.6.1")
    assert proc.returncode == 1 and "invalid at its own Dynamo version too" in proc.stderr, proc.stderr
    assert "error DYN403" in proc.stderr and "Dynamo 1.6.1 refuses, and" not in proc.stderr
    assert "router.reset_states: true -> removed" in proc.stderr  # the rewrites that apply are still listed


def test_a_spec_in_last_releases_format_and_for_another_release_in_one_step(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(  # the 0.1.0 form of the mock engine switch (a local setting), an aggregated pool
        "apiVersion: dyncc/v1\nname: qwen3-mock\nmodel: {path: Qwen/Qwen3-0.6B, moe: false}\n"
        "pools:\n  agg: {replicas: 2}\nlocal:\n  engine: mocker  # no GPU\n  http_port: 8123\n"
    )
    new = tmp_path / "new.yaml"
    proc = cli("migrate", spec, "--to", "0.5.1", "-o", new)
    assert proc.returncode == 0, proc.stderr
    assert f"{spec}: local.engine -> worker_runtime: mocker (the old form of the setting)" in proc.stderr
    assert f"{spec}: dynamo.version: 1.6.1 -> 0.5.1 (the release deployed)" in proc.stderr
    check = cli("validate", "--format", "json", new)
    assert check.returncode == 0
    assert "DYN021" not in {d["code"] for d in json.loads(check.stdout)["files"][0]["diagnostics"]}
    assert load_spec(new).spec.dynamo.version == "0.5.1" and "local:\n  http_port: 8123\n" in new.read_text()


def test_a_refusal_of_a_moved_setting_points_at_where_the_file_has_it(tmp_path):
    spec = next(p for p in RELEASED if p.name.startswith("slurm_mocker@"))  # mock prefill + decode pools
    proc = cli("migrate", spec, "--to", "0.5.1", "-o", tmp_path / "new.yaml")
    assert proc.returncode == 1 and not (tmp_path / "new.yaml").exists()
    # The 0.1.0 form's lines (it writes the switch twice, local.engine and slurm.engine).
    lines = [i for i, line in enumerate(spec.read_text().splitlines(), 1) if line == "  engine: mocker"]
    # 0.5.1's mock engine has no disaggregation: one error (the local and slurm targets refuse alike).
    assert proc.stderr.count("error DYN503") == 1, proc.stderr
    assert any(f"{spec}:{line}:11: error DYN503" in proc.stderr for line in lines), proc.stderr


@pytest.mark.parametrize("spec", RELEASED, ids=lambda p: p.name)
def test_every_released_spec_migrates_to_the_current_form_without_old_forms(spec):
    migration = migrate_file(spec)
    assert "DYN021" not in {d.code for d in migration.diagnostics}
    if not any(d.code == "DYN021" for d in load_spec(spec).notices):
        assert migration.text == spec.read_text() and not migration.changes  # nothing to move: byte for byte


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_there_and_back_builds_the_same_files(example):
    """An example taken to 0.5.1 and back to its own release deploys exactly what it did: a rewrite that
    changed behaviour (or a setting lost on the way) would show in the files."""
    there = migrate_file(example, to="0.5.1")
    if not there.ok:  # what 0.5.1 refuses is named by its code and nothing is written
        assert all(d.code.startswith("DYN") and d.location for d in there.refused)
        return
    back = migrate_text(there.text, str(example), example.parent, to=load_spec(example).spec.dynamo.version)
    assert back.ok, back.refused

    def files(text: str) -> dict:
        return render_targets(compile_spec(load_spec_text(text, str(example), example.parent)), ["all"])[0]

    assert files(back.text) == files(example.read_text())


def test_migrate_code_names_no_release():
    """The release facts are the profiles' and the rules': migrate and diff compare no version string, so a
    new release file needs no change there."""
    for module in ("migrate.py", "diff.py"):
        source = (ROOT / "dyncc" / "tools" / module).read_text()
        assert not re.findall(r"\d+\.\d+\.\d+", source), module


# --- dyncc diff across releases ---------------------------------------------------------------------------


def test_diff_shows_what_one_spec_changes_between_two_releases():
    proc = cli("diff", SPEC_2025, "--new-version", "1.6.1")
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "  dynamo.version: '0.5.1' -> '1.6.1'" in lines
    assert "  router.disaggregation_strategy: removed, was 'prefill_first'" in lines
    assert "  frontend: removed flag --router-reset-states" in lines
    assert "  prefill: removed flag --disaggregation-strategy prefill_first" in lines
    assert "  prefill: removed flag --publish-events-and-metrics" in lines
    assert "  prefill: added flag --publish-kv-events" in lines
    assert any(line.startswith("  k8s: ") and "dynamographdeployment.yaml" in line for line in lines)
    # Both releases named, the other way round: the same changes, reversed (0.5.1 is the spec as written).
    back = cli("diff", SPEC_2025, "--old-version", "1.6.1", "--new-version", "0.5.1")
    assert back.returncode == 0, back.stderr
    assert "  router.disaggregation_strategy: added 'prefill_first'" in back.stdout.splitlines()
    assert "  prefill: added flag --disaggregation-strategy prefill_first" in back.stdout.splitlines()
    assert "  prefill: added flag --publish-events-and-metrics" in back.stdout.splitlines()


def test_diff_across_releases_refuses_what_the_release_refuses_and_needs_a_second_side():
    refused = cli("diff", EXAMPLES / "invalid" / "DYN703_feature-needs-newer.yaml", "--old-version", "1.6.1",
                  "--new-version", "0.5.1")  # fmt: skip
    assert_no_traceback(refused)
    assert refused.returncode == 1 and "error DYN703" in refused.stderr
    usage = cli("diff", SPEC_2025)
    assert usage.returncode == 2 and "--new-version" in usage.stderr
