"""Every Dynamo release dyncc has a file for (issue 31): its profile is read from the data, every example it can
express builds for every target, and every flag in every generated command line is one that release's parsers
declare, with a value among its choices. What a release cannot express is refused with a code naming the
release that has the missing flag. tests/test_release_parsers.py runs the real parsers of four releases."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing

import pytest
from command_lines import build_command_lines
from conftest import EXAMPLES, REFERENCE, ROOT, VALID_EXAMPLES, cli

from dyncc.compiler.profiles import profile_for, profiles
from dyncc.engines.mocker.impl import modes as mock_modes
from dyncc.engines.trtllm.release import keyset_for, release_view
from dyncc.releases import first_with, last_with, release, releases
from dyncc.spec.serving import RouterMode

RELEASES = [r.dynamo for r in releases()]
REFUSED = re.compile(r"\berror (DYN\d{3})\b")
ERROR_AT = re.compile(r"^\S.*? error (DYN\d{3}): .*?^    at (\S+)$", re.M | re.S)


def test_every_pypi_release_from_0_4_to_1_6_has_a_file():
    assert len(RELEASES) == 33 and RELEASES[0] == "0.4.0" and RELEASES[-1] == "1.6.1"
    assert RELEASES.index("0.8.1.post3") < RELEASES.index("0.9.0")  # PEP 440 order, not string order
    assert len(profiles()) == 33


@pytest.mark.reference
def test_the_release_files_are_what_the_generator_makes_of_the_reference(tmp_path):
    flags = REFERENCE / "dynamo-releases.json"
    proc = subprocess.run(
        [sys.executable, ROOT / "scripts" / "gen_releases.py", "--flags", flags, "--out", tmp_path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    shipped = ROOT / "dyncc" / "releases" / "data"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in shipped.iterdir() if p.suffix == ".json"
    )
    for made in tmp_path.iterdir():
        assert made.read_text() == (shipped / made.name).read_text(), made.name


@pytest.mark.parametrize("version", RELEASES)
def test_a_release_file_and_nothing_else_makes_the_profile(version):
    """The profile's facts are the release's parser data: each field checked against the flags it stands for."""
    rel, profile = release(version), profile_for(version)
    assert rel is not None and profile is not None and profile.release is rel
    assert rel.has("frontend" if profile.migration_on == "frontend" else "worker", "--migration-limit")
    assert rel.has("frontend", profile.approximate_kv_routing_flag)
    assert set(profile.tool_call_parsers) == set(rel.choices("worker", "--dyn-tool-call-parser"))
    # What the release means for its engines' workers is each engine's view of the same file.
    view = release_view(rel)
    assert view.version == rel.pins["trtllm"] and view.keyset == keyset_for(view.version)
    assert view.agg_mode in rel.choices("worker", "--disaggregation-mode")
    for flag in view.kv_event_flags:
        assert rel.has("worker", flag)
    assert rel.has("worker", view.model_flag) and not rel.option("worker", view.model_flag).deprecated
    switched = {role for role in ("prefill", "decode") if rel.has("mocker", f"--is-{role}-worker")}
    assert mock_modes(rel) <= {"agg", *rel.choices("mocker", "--disaggregation-mode"), *switched}


def test_the_nearest_key_set_is_of_the_same_line_and_not_newer():
    assert keyset_for("1.3.0rc29") == "1.3.0rc29"
    assert keyset_for("1.3.0rc25") == "1.3.0rc22"  # Dynamo 1.5.x
    assert keyset_for("1.3.0rc19") == "1.3.0rc14"  # Dynamo 1.3.x
    assert keyset_for("1.2.0rc6.post3") == "1.2.0rc6.post1"
    assert keyset_for("1.3.0rc1") == "1.3.0rc11"  # no older 1.3 set: that line's oldest
    assert keyset_for("1.0.0rc4") == "1.1.0rc5"  # no 1.0 set at all: the nearest line


def test_a_release_checked_against_another_key_set_says_so(tmp_path):
    proc = cli("build", EXAMPLES / "agg.yaml", "--dynamo-version", "1.5.1", "-o", tmp_path / "o", "-t", "local")
    assert proc.returncode == 0, proc.stderr
    assert "warning DYN707" in proc.stderr and "TensorRT-LLM 1.3.0rc22's key set" in proc.stderr
    engine = (tmp_path / "o" / "local" / "engine" / "agg.yaml").read_text()
    assert engine.startswith("# TensorRT-LLM 1.3.0rc25 engine config") and "1.3.0rc22's set" in engine
    exact = cli("build", EXAMPLES / "agg.yaml", "--dynamo-version", "1.4.2", "-o", tmp_path / "e", "-t", "local")
    assert exact.returncode == 0 and "DYN707" not in exact.stderr


def _build_all(spec, version, engine, out):
    """`dyncc build -t all` for ``version``; 0.4.0's frontend listens on every interface, so where the local
    target refuses that (DYN514 at local.http_host) the other targets are built."""
    proc = cli("build", spec, "-t", "all", "--dynamo-version", version, "--engine", engine, "-o", out)
    if "at local.http_host" in proc.stderr:
        rel = release(version)
        assert rel is not None and "DYN514" in proc.stderr and not rel.has("frontend", "--http-host")
        targets = ("-t", "slurm") if engine == "mocker" else ("-t", "slurm", "-t", "compose", "-t", "k8s")
        proc = cli("build", spec, *targets, "--dynamo-version", version, "--engine", engine, "-o", out)
    assert proc.returncode in (0, 1), proc.stderr
    return proc


def _assert_every_command_line_is_the_releases(rel, out, worker):
    lines = build_command_lines(out)
    assert {c.component for c in lines} >= {"frontend", worker}
    for line in lines:
        problems = rel.argv_problems(line.component, [_value(w) for w in line.argv])  # type: ignore[arg-type]
        assert problems == [], f"{line.where}: {problems}"


@pytest.mark.slow
@pytest.mark.parametrize("version", RELEASES)
def test_every_example_builds_and_every_flag_written_is_the_releases(version, tmp_path):
    rel = release(version)
    assert rel is not None
    built = 0
    for example in VALID_EXAMPLES:
        for engine in ("trtllm", "mocker"):
            out = tmp_path / f"{example.stem}-{engine}"
            proc = _build_all(example, version, engine, out)
            if proc.returncode == 1:
                # Refused only for what the release lacks, with the code that says so.
                assert set(REFUSED.findall(proc.stderr)) <= {"DYN514", "DYN503", "DYN703", "DYN702"}, proc.stderr
                assert "came with Dynamo" in proc.stderr or "has no" in proc.stderr, proc.stderr
                continue
            built += 1
            _assert_every_command_line_is_the_releases(rel, out, "worker" if engine == "trtllm" else "mocker")
    # Only mock runs may be refused (modes or flags the release's mock engine lacks).
    assert built >= len(VALID_EXAMPLES), f"Dynamo {version}: {built} builds"


def _errors_at(report: str) -> list[tuple[str, str]]:
    """(code, spec path) of each error in a text report."""
    return ERROR_AT.findall(report)


# Each spec setting that writes a frontend flag, set in disagg_router: (replace, with, its path).
FRONTEND_SETTINGS = {
    "kv_events": ("  mode: kv\n", "  mode: kv\n  kv_events: false\n", "router.kv_events"),
    "block_size": ("  mode: kv\n", "  mode: kv\n  block_size: 32\n", "router.block_size"),
    "credit": ("  mode: kv\n", "  mode: kv\n  overlap_score_credit: 0.5\n", "router.overlap_score_credit"),
    "temperature": ("  mode: kv\n", "  mode: kv\n  temperature: 0.5\n", "router.temperature"),
    "replica_sync": ("  mode: kv\n", "  mode: kv\n  replica_sync: true\n", "router.replica_sync"),
    "reset_states": ("  mode: kv\n", "  mode: kv\n  reset_states: true\n", "router.reset_states"),
    "conditional": ("  mode: kv\n", "  mode: kv\n  conditional_disagg: true\n", "router.conditional_disagg"),
    "max_seq_len": ("  limit: 3\n", "  limit: 3\n  max_seq_len: 4096\n", "migration.max_seq_len"),
    "request_plane": ("router:\n", "request_plane: tcp\nrouter:\n", "request_plane"),
    "namespace": ("router:\n", "namespace: team-a\nrouter:\n", "namespace"),
}


def _frontend_variants() -> dict[str, tuple[str, str]]:
    """(spec text, the path a refusal must point at): disagg_router in every router mode the spec offers, with
    each setting that writes a frontend flag, and with two k8s frontends (the k8s target then adds
    --router-replica-sync to the frontend itself)."""
    text = (EXAMPLES / "disagg_router.yaml").read_text()
    variants = {"two-frontends": (text + "k8s:\n  frontend:\n    replicas: 2\n", "k8s.frontend.replicas")}
    for mode in typing.get_args(RouterMode):
        variants[mode] = (text.replace("  mode: kv\n", f"  mode: {mode}\n"), "router.mode")
    for name, (old, new, path) in FRONTEND_SETTINGS.items():
        assert text.count(old) == 1, name
        variants[name] = (text.replace(old, new), path)
    return variants


@pytest.mark.slow
@pytest.mark.parametrize("version", RELEASES)
def test_a_frontend_flag_the_release_refuses_is_refused_on_every_target_at_its_setting(version, tmp_path):
    """Issue: `router.mode: least-loaded` on Dynamo 0.5.1 built for k8s, slurm and compose (only the local
    target checked its frontend command), and local's DYN514 pointed at dynamo.version. Every router mode and
    every setting that writes a frontend flag, on every release, either builds for every target with every
    command line accepted by the release's parsers, or is refused once, at that setting, naming the release
    that has (or last had) what it needs: by the compiler (DYN703) for the spec's flags, by the k8s target
    (DYN514) for the flag it adds itself."""
    rel = release(version)
    assert rel is not None
    for name, (text, at) in _frontend_variants().items():
        spec, out = tmp_path / f"{name}.yaml", tmp_path / name
        spec.write_text(text)
        proc = _build_all(spec, version, "trtllm", out)
        # Where the variant writes one flag (value) whose presence is known: whether the release lacks it.
        flag = {"two-frontends": ("--router-replica-sync", None), "router.mode": ("--router-mode", name)}.get(
            name if name == "two-frontends" else at
        )
        lacks = None if flag is None else not rel.accepts("frontend", *flag)
        if proc.returncode == 1:
            assert lacks is not False, f"{name}: refused on Dynamo {version}: {proc.stderr}"
            assert _errors_at(proc.stderr) == [("DYN514" if name == "two-frontends" else "DYN703", at)], proc.stderr
            assert re.search(r"it came with Dynamo \S+|Dynamo \S+ was the last release with it", proc.stderr)
            first = first_with("frontend", *flag) if flag else None
            assert first is None or f"it came with Dynamo {first.dynamo}" in proc.stderr, proc.stderr
            continue
        assert lacks is not True, f"{name}: built for Dynamo {version}"
        _assert_every_command_line_is_the_releases(rel, out, "worker")
        frontends = [c for c in build_command_lines(out) if c.component == "frontend"]
        assert {c.where.split("/")[0] for c in frontends} >= {"slurm", "k8s", "compose"}, frontends
        if at == "router.mode":
            assert all(c.argv[c.argv.index("--router-mode") + 1] == name for c in frontends)


@pytest.mark.parametrize("target", ["local", "k8s", "slurm", "compose"])
def test_a_router_mode_the_release_lacks_is_refused_for_every_target_at_router_mode(target, tmp_path):
    """The reported case: least-loaded on 0.5.1 (its --router-mode: round-robin, random, kv) built for k8s."""
    spec = tmp_path / "s.yaml"
    spec.write_text((EXAMPLES / "disagg_router.yaml").read_text().replace("  mode: kv\n", "  mode: least-loaded\n"))
    proc = cli("build", spec, "--dynamo-version", "0.5.1", "-t", target, "-o", tmp_path / "o")
    assert proc.returncode == 1 and not (tmp_path / "o").exists(), proc.stderr
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1) if "least-loaded" in text)
    assert _errors_at(proc.stderr) == [("DYN703", "router.mode")] and f"s.yaml:{line}:" in proc.stderr, proc.stderr
    assert "`--router-mode` takes round-robin, random, kv, not least-loaded" in proc.stderr
    assert "it came with Dynamo 1.1.0" in proc.stderr and "deploy Dynamo 1.1.0 or later" in proc.stderr


def _value(word: str) -> str:
    """A shell word as the parser sees a value: variables stand for values, never for flags."""
    return word if word.startswith("--") else (word or "x")


@pytest.mark.parametrize("version", ["1.6.1", "1.6.0"])
def test_output_for_1_6_holds_no_flag_its_parser_marks_deprecated(version, tmp_path):
    rel = release(version)
    assert rel is not None
    for example in VALID_EXAMPLES:
        out = tmp_path / example.stem
        assert cli("build", example, "-t", "all", "--dynamo-version", version, "-o", out).returncode == 0
        for line in build_command_lines(out):
            deprecated = rel.deprecated_in(line.component, list(line.argv))  # type: ignore[arg-type]
            # `--connector` is marked "[Deprecated for vLLM]": the TensorRT-LLM worker's KVBM connector is it.
            assert [d for d in deprecated if "for vLLM" not in d] == [], f"{line.where}: {deprecated}"


def test_a_feature_a_release_lacks_names_the_first_release_that_has_it(tmp_path):
    spec = tmp_path / "s.yaml"
    text = (EXAMPLES / "disagg_router.yaml").read_text()
    spec.write_text(text.replace("  mode: kv\n", "  mode: kv\n  overlap_score_credit: 0.5\n"))
    proc = cli("validate", spec, "-t", "local")
    assert proc.returncode == 0, proc.stderr
    first = first_with("frontend", "--router-kv-overlap-score-credit")
    assert first is not None
    before = RELEASES[RELEASES.index(first.dynamo) - 1]
    refused = cli("build", spec, "--dynamo-version", before, "-o", tmp_path / "o")
    assert refused.returncode == 1 and "DYN703" in refused.stderr
    assert f"it came with Dynamo {first.dynamo}" in refused.stderr
    assert cli("build", spec, "--dynamo-version", first.dynamo, "-o", tmp_path / "p").returncode == 0


def test_a_feature_a_release_dropped_names_the_last_release_that_had_it(tmp_path):
    spec = tmp_path / "s.yaml"
    text = (EXAMPLES / "disagg_router.yaml").read_text()
    spec.write_text(text.replace("  mode: kv\n", "  mode: kv\n  reset_states: true\n"))
    last = last_with("frontend", "--router-reset-states")
    assert last is not None and last.dynamo == "1.3.1"
    proc = cli("build", spec, "--dynamo-version", "1.4.0", "-o", tmp_path / "o")
    assert proc.returncode == 1 and "Dynamo 1.3.1 was the last release with it" in proc.stderr
    built = cli("build", spec, "--dynamo-version", "1.3.1", "-o", tmp_path / "p", "-t", "local")
    assert built.returncode == 0 and "--router-reset-states" in (tmp_path / "p" / "local" / "launch.sh").read_text()


def test_a_release_file_added_is_a_release_dyncc_deploys(tmp_path, monkeypatch):
    """The seam: a new file in dyncc/releases/data and nothing else (a fake 1.6.9, copied from 1.6.1)."""
    import dyncc.compiler.profiles as profiles_module
    import dyncc.releases as releases_module

    data = ROOT / "dyncc" / "releases" / "data"
    fake = json.loads((data / "dynamo-1.6.1.json").read_text())
    fake["dynamo"] = "1.6.9"
    fake_dir = tmp_path / "data"
    fake_dir.mkdir()
    for path in data.glob("*.json"):
        (fake_dir / path.name).write_text(path.read_text())
    (fake_dir / "dynamo-1.6.9.json").write_text(json.dumps(fake))
    monkeypatch.setattr(releases_module, "_data_dir", lambda: fake_dir)
    releases_module.releases.cache_clear()
    profiles_module.profile_for.cache_clear()
    try:
        proc = cli("build", EXAMPLES / "agg.yaml", "--dynamo-version", "1.6.9", "-o", tmp_path / "o", "-t", "local")
        assert proc.returncode == 0, proc.stderr
        assert "Dynamo 1.6.9" in (tmp_path / "o" / "local" / "launch.sh").read_text()
    finally:
        releases_module.releases.cache_clear()
        profiles_module.profile_for.cache_clear()


def test_an_overlap_credit_over_one_is_refused_only_where_the_frontend_refuses_it(tmp_path):
    """1.3.1's frontend exits on a credit over 1.0; 1.4.2, 1.5.1 and 1.6.1 start with it (their own frontends,
    tests/test_router_policy.py and a 1.6.1 run)."""
    spec = tmp_path / "s.yaml"
    text = (EXAMPLES / "disagg_router.yaml").read_text()
    spec.write_text(text.replace("  mode: kv\n", "  mode: kv\n  overlap_score_credit: 1.5\n"))
    assert cli("validate", spec, "-t", "local").returncode == 0  # the spec's own release: 1.6.1
    for version, ok in (("1.3.1", False), ("1.3.0.post1", False), ("1.4.2", True), ("1.6.1", True)):
        proc = cli("build", spec, "--dynamo-version", version, "-t", "local", "-o", tmp_path / version)
        assert (proc.returncode == 0) is ok, proc.stderr
        if not ok:
            assert "DYN703" in proc.stderr and "over 1.0" in proc.stderr


@pytest.mark.parametrize("text", ["1." + "9" * 5000, "1.2.3rc" + "9" * 5000, "01.06.01", "1.6.1.post"])
def test_a_version_no_file_is_named_by_is_unknown_not_a_crash(text):
    """A release segment over 4,300 digits is refused by int() itself, as ValueError, not InvalidVersion:
    the CI of 2026-12 found `dynamo.version: 1.999...` (5,000 digits) reported as an internal error."""
    assert release(text) is None and profile_for(text) is None


def test_a_huge_dynamo_version_is_dyn701_at_its_line(tmp_path):
    spec = tmp_path / "s.yaml"
    text = (EXAMPLES / "agg.yaml").read_text()
    spec.write_text(
        text.replace(
            "apiVersion: dyncc/v1\n", "apiVersion: dyncc/v1\ndynamo:\n  version: '1.6." + "9" * 5000 + "'\n", 1
        )
    )
    proc = cli("validate", spec)
    assert proc.returncode == 1 and "internal error" not in proc.stderr, proc.stderr[-500:]
    assert re.search(r"s\.yaml:5:\d+: error DYN701", proc.stdout + proc.stderr), (proc.stdout + proc.stderr)[-800:]


@pytest.mark.parametrize("version", ["0.5.1", "1.6.1"])
def test_a_copied_or_pickled_profile_equals_the_original(version):
    """A Release is identified by its version: a copy of a profile (or of a view holding its release) is equal
    and hashes alike, though its flag maps are new objects (their own maps are not hashable)."""
    import copy
    import pickle

    profile = profile_for(version)
    view = release_view(release(version))
    for original in (profile, view, release(version)):
        for copied in (copy.deepcopy(original), pickle.loads(pickle.dumps(original))):
            assert copied == original and hash(copied) == hash(original)
    assert profile_for("0.5.1") != profile_for("1.6.1")
    assert release("0.5.1") != release("1.6.1")
