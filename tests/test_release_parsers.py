"""The real argument parsers of four Dynamo releases across the range, loaded from their PyPI wheels
(scripts/release_flags.py), against what dyncc writes for each (issue 31).

- The extractor is right: `scripts/release_flags.py V` prints the flags dynamo-releases.json holds for V.
- Every command line dyncc writes for V is one V's own parser function accepts: each example built with
  `--dynamo-version V` for every target (and with the mock engine, which local and Slurm run), every frontend,
  worker and mocker line read back from the files, each run through that release's parse function to its
  end (its rewrites, leftover handling and validation included). An example V cannot express is refused
  with a DYN7xx code (the mock engine's DYN503 for modes 0.5.1's mocker lacks); most must build.
- Nor does the release warn that any of them is deprecated.
- The check can fail: each release refuses a flag it lacks and a value outside its choices.

The wheels come from `scripts/setup.sh` (into .cache/wheels/); without them the tests skip here and fail in CI.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from command_lines import CommandLine, build_command_lines
from conftest import REFERENCE, ROOT, VALID_EXAMPLES, cli, release_wheels

from dyncc.engines.mocker.impl import modes as mock_modes
from dyncc.releases import release

sys.path.insert(0, str(ROOT / "scripts"))
from release_flags import MODULES, parse_command_lines  # noqa: E402

RELEASES = ["0.5.1", "0.8.1", "1.3.1", "1.6.1"]
RELEASES_JSON = "dynamo-releases.json"
SCRIPT = ROOT / "scripts" / "release_flags.py"
# A sentinel object's default is written as its repr, whose address differs in every process.
ADDRESS = re.compile(r" at 0x[0-9a-f]+")
REFUSAL = re.compile(r"\berror (DYN\d{3})\b")

pytestmark = pytest.mark.slow


def needs_wheels(version: str) -> None:
    release_wheels(version, "check the real parsers")


def _reference(version: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads((REFERENCE / RELEASES_JSON).read_text())[version]
    return entry


def _comparable(flags: dict[str, Any]) -> dict[str, Any]:
    return json.loads(ADDRESS.sub(" at 0x…", json.dumps(flags)))


@pytest.mark.reference(RELEASES_JSON)
@pytest.mark.parametrize("version", RELEASES)
def test_the_extractor_reproduces_the_reference_flags(version):
    needs_wheels(version)
    proc = subprocess.run([sys.executable, SCRIPT, version], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(proc.stdout)
    reference = _reference(version)
    assert entry["trtllm_pin"] == reference["trtllm_pin"]
    for component in ("worker", "frontend", "mocker"):
        key = f"{component}_flags"
        assert list(entry[key]) == list(reference[key]), component  # the same flags, in the parser's order
        assert _comparable(entry[key]) == _comparable(reference[key]), component
    assert entry["notes"]["default_constants"] == reference["notes"]["default_constants"]


def _build(example: Path, out: Path, version: str, *extra: str) -> tuple[str, list[str]]:
    """("built", []) or ("refused", codes); anything else fails the test."""
    proc = cli("build", example, "--dynamo-version", version, "-o", out, *extra)
    if proc.returncode == 0:
        return "built", []
    codes = sorted(set(REFUSAL.findall(proc.stderr)))
    allowed = re.compile(r"DYN7\d\d|DYN503" if "mocker" in extra else r"DYN7\d\d")
    assert proc.returncode == 1 and codes and all(allowed.fullmatch(c) for c in codes), (
        example.name,
        version,
        extra,
        proc.returncode,
        proc.stderr[-2000:],
    )
    return "refused", codes


def _every_line_read(out: Path, lines: list[CommandLine]) -> None:
    """Nothing escaped the reader: each written target has a frontend and a worker line, and each shell
    line that starts a component was read."""
    targets = {p.name for p in out.iterdir() if p.is_dir()}
    for target in targets:
        found = {line.component for line in lines if line.where.startswith(f"{target}/")}
        assert "frontend" in found and found & {"worker", "mocker"}, (out, target, found)
    for path in out.rglob("*"):
        if path.suffix in (".sh", ".sbatch"):
            starts = [
                l for l in path.read_text().splitlines() if re.search(r"-m dynamo\.(frontend|trtllm|mocker)\b", l)
            ]
            read = [l for l in lines if l.where.startswith(str(path.relative_to(out)) + ":")]
            assert len(read) == len(starts), (path, len(read), len(starts))


@pytest.mark.parametrize("version", RELEASES)
def test_every_generated_command_line_passes_the_releases_own_parsers(version, tmp_path):
    needs_wheels(version)
    lines: list[CommandLine] = []
    outcomes: dict[str, dict[str, Any]] = {}
    for example in VALID_EXAMPLES:
        for engine, extra in (("trtllm", ("-t", "all")), ("mocker", ("-t", "all", "--engine", "mocker"))):
            out = tmp_path / f"{example.stem}-{engine}"
            outcome, codes = _build(example, out, version, *extra)
            outcomes.setdefault(engine, {})[example.name] = codes or outcome
            if outcome == "built":
                found = [
                    CommandLine(f"{example.name}:{l.where}", l.component, l.argv) for l in build_command_lines(out)
                ]
                _every_line_read(out, build_command_lines(out))
                lines += found
    built = [name for name, outcome in outcomes["trtllm"].items() if outcome == "built"]
    assert len(built) * 2 > len(VALID_EXAMPLES), outcomes  # most examples build for every release tested
    assert {line.component for line in lines} == {"frontend", "worker", "mocker"}
    # Where the release's mock engine has prefill and decode workers (by --disaggregation-mode, or by the
    # --is-prefill-worker/--is-decode-worker switches of 0.6.1-0.9.x), a disaggregated example runs on it.
    if {"prefill", "decode"} <= mock_modes(release(version)):
        assert outcomes["mocker"]["disagg_router.yaml"] == "built", outcomes["mocker"]

    unique = sorted({(line.component, line.argv) for line in lines})
    verdicts = dict(zip(unique, parse_command_lines(version, unique)))
    refused = [
        f"{line.where}: python3 -m {MODULES[line.component]} {' '.join(line.argv)}\n    -> {verdicts[(line.component, line.argv)]['error']}"
        for line in lines
        if not verdicts[(line.component, line.argv)]["ok"]
    ]
    assert not refused, f"Dynamo {version} refuses {len(refused)} of {len(lines)} lines:\n" + "\n".join(refused)
    # Nor does any line use a flag the release itself warns is deprecated (its replacement exists there).
    warned = sorted({w for line in unique for w in verdicts[line]["deprecations"]})
    assert not warned, f"Dynamo {version} warns:\n" + "\n".join(warned)


@pytest.mark.reference(RELEASES_JSON)
@pytest.mark.parametrize("version", RELEASES)
def test_the_parse_check_can_fail(version):
    """Each release refuses an unknown flag and a value outside its choices, accepts each of its choices,
    and takes `--trtllm.<key> <value>` leftovers exactly where its notes say its code does (1.1.0+)."""
    needs_wheels(version)
    reference = _reference(version)
    modes = reference["worker_flags"]["--disaggregation-mode"]["choices"]
    worker = ["--model-path", "m", "--served-model-name", "m"]
    dynamic = "--trtllm.<dotted.key> VALUE" in reference["notes"]["worker"]
    cases = [
        ("worker", [*worker, "--no-such-flag", "1"], False),
        ("frontend", ["--no-such-flag"], False),
        ("mocker", ["--model-path", "m", "--no-such-flag", "1"], False),
        ("worker", [*worker, "--disaggregation-mode", "no-such-mode"], False),
        ("worker", [*worker, "--tensor-parallel-size", "two"], False),
        ("frontend", ["--router-mode", "kv", "--http-port", "8000"], True),
        ("mocker", ["--model-path", "m", "--model-name", "m"], True),
        ("worker", [*worker, "--trtllm.kv_cache_config.free_gpu_memory_fraction", "0.5"], dynamic),
        *[("worker", [*worker, "--disaggregation-mode", mode], True) for mode in modes],
    ]
    verdicts = parse_command_lines(version, [(component, argv) for component, argv, _ in cases])
    wrong = [(c, a, v) for (c, a, expected), v in zip(cases, verdicts) if v["ok"] != expected]
    assert not wrong, wrong
    assert (
        "unrecognized arguments: --no-such-flag" in verdicts[1]["error"] or "Unknown arguments" in verdicts[1]["error"]
    )
