"""The loader and CLI boundary under hostile input: every YAML oddity is a coded error with a location,
loading is bounded in time and memory whatever the input, spec content cannot drive the terminal, and an
unexpected error is one line and exit 3, never a traceback.

In process (`cli`, `dyncc.api.validate`) except where the real interpreter's exit status is the point."""

from __future__ import annotations

import errno
import json
import os
import re
import time
from pathlib import Path

import pytest
from conftest import ROOT, assert_no_traceback, cli, run_dyncc

from dyncc.api import validate
from dyncc.spec.loader import MAX_NODES, MAX_SPEC_BYTES

HEAD = "apiVersion: dyncc/v1\nname: t\nmodel: {path: m, moe: false}\n"
SPEC = HEAD + "pools: {agg: {}}\n"
CODE = re.compile(r"DYN\d{3}")

# (id, YAML text, the code it must fail with, its 1-based line). Directives, tags, aliases, encodings,
# numbers and document shapes that have made YAML loaders crash, hang or silently change a value.
ODDITIES: list[tuple[str, str | bytes, str, int]] = [
    ("yaml-9.9-after-content", "a: 1\n%YAML 9.9\n", "DYN001", 2),
    ("yaml-9.9-first", "%YAML 9.9\n---\n" + SPEC, "DYN001", 1),
    ("yaml-2.0", "%YAML 2.0\n---\n" + SPEC, "DYN001", 1),
    ("yaml-1.3", "%YAML 1.3\n---\n" + SPEC, "DYN001", 1),
    ("yaml-0.9", "%YAML 0.9\n---\n" + SPEC, "DYN001", 1),
    ("yaml-directive-twice", "%YAML 1.2\n%YAML 1.2\n---\n" + SPEC, "DYN001", 2),
    ("yaml-directive-no-version", "%YAML\n---\n" + SPEC, "DYN001", 1),
    ("yaml-directive-garbage", "%YAML x.y\n---\n" + SPEC, "DYN001", 1),
    ("directive-without-doc-start", "%YAML 1.2\n" + SPEC, "DYN001", 2),
    (
        "tag-directive-then-tag",
        "%TAG !e! tag:example.com,2000:\n---\n" + HEAD + "pools: !e!pool {agg: {}}\n",
        "DYN016",
        6,
    ),
    ("tag-directive-bad-handle", "%TAG !x tag:a\n---\n" + SPEC, "DYN001", 1),
    ("unknown-directive-in-doc", SPEC + "%FOO bar\n", "DYN001", 5),
    ("doc-end-then-directive", SPEC + "...\n%YAML 9.9\n---\n" + SPEC, "DYN001", 6),
    ("custom-tag-mapping", HEAD + "pools:\n  agg: !foo {replicas: 1}\n", "DYN016", 5),
    ("custom-tag-scalar", HEAD + "pools: {agg: {replicas: !custom 5}}\n", "DYN016", 4),
    ("custom-tag-sequence", HEAD + "pools: {agg: {}}\nbenchmark: {concurrency: !list [1]}\n", "DYN016", 5),
    ("custom-tag-on-key", HEAD + "pools: {!k agg: {}}\n", "DYN016", 4),
    ("verbatim-tag", HEAD + "pools: {agg: !<tag:example.com,2000:x> {}}\n", "DYN016", 4),
    ("set-tag", HEAD + "pools:\n  agg:\n    engine:\n      extra:\n        model_kwargs: !!set {a, b}\n", "DYN016", 8),
    ("omap-tag", HEAD + "pools: {agg: {engine: {extra: {kw: !!omap [{a: 1}]}}}}\n", "DYN016", 4),
    ("pairs-tag", HEAD + "pools: {agg: {engine: {extra: {kw: !!pairs [{a: 1}]}}}}\n", "DYN016", 4),
    ("binary-tag", HEAD.replace("path: m", "path: !!binary aGVsbG8=") + "pools: {agg: {}}\n", "DYN016", 3),
    ("timestamp-tag", HEAD + "pools: {agg: {engine: {extra: {t: !!timestamp 2024-01-01}}}}\n", "DYN016", 4),
    (
        "python-object",
        HEAD + "pools: {agg: {engine: {extra: {k: !!python/object/apply:os.system [x]}}}}\n",
        "DYN016",
        4,
    ),
    ("python-name", "name: !!python/name:os.system x\n", "DYN016", 1),
    ("value-tag", HEAD + "pools: {agg: {engine: {extra: {k: !!value x}}}}\n", "DYN016", 4),
    ("merge-tag-explicit", HEAD + "pools: {agg: {!!merge x: 1}}\n", "DYN016", 4),
    ("int-tag-on-text", HEAD + "pools: {agg: {replicas: !!int abc}}\n", "DYN001", 4),
    ("float-tag-on-text", HEAD + "pools: {agg: {engine: {extra: {f: !!float abc}}}}\n", "DYN001", 4),
    ("bool-tag-on-text", HEAD + "pools: {agg: {engine: {extra: {f: !!bool maybe}}}}\n", "DYN001", 4),
    ("null-tag-on-text", HEAD + "pools: {agg: {engine: {extra: {f: !!null x}}}}\n", "DYN016", 4),
    ("map-tag-on-seq", HEAD + "pools: {agg: !!map [1]}\n", "DYN001", 4),
    ("undefined-alias", HEAD + "pools: {agg: *nowhere}\n", "DYN001", 4),
    ("recursive-alias-seq", SPEC + "x: &a [*a]\n", "DYN017", 5),
    ("recursive-alias-map", HEAD + "pools:\n  agg:\n    engine:\n      extra:\n        kw: &a {k: *a}\n", "DYN017", 8),
    ("recursive-alias-deep", HEAD + "pools: {agg: {engine: {extra: {kw: &a {k: [{j: *a}]}}}}}\n", "DYN017", 4),
    ("alias-to-undefined-later", HEAD + "pools: {agg: *a}\nx: &a {}\n", "DYN001", 4),
    ("alias-as-key", HEAD + "pools: {agg: {}}\nk: &k [1]\n? *k\n: 1\n", "DYN012", 1),
    ("merge-non-mapping", HEAD + "pools: {agg: {<<: 5}}\n", "DYN001", 4),
    ("anchor-on-nothing", HEAD + "pools: {agg: &x }\n", "DYN013", 4),
    ("duplicate-key", SPEC + "name: again\n", "DYN001", 5),
    ("duplicate-nested-key", HEAD + "pools: {agg: {replicas: 1, replicas: 2}}\n", "DYN001", 4),
    ("two-documents", SPEC + "---\n" + SPEC, "DYN001", 5),
    ("utf16-bom", b"\xff\xfe" + SPEC.encode("utf-16-le"), "DYN001", 1),
    ("utf32", SPEC.encode("utf-32"), "DYN001", 1),
    ("latin1", HEAD.replace("name: t", "name: caf\xe9").encode("latin-1"), "DYN001", 2),
    ("nul-byte", SPEC.replace("name: t", "name: t\x00").encode(), "DYN001", 2),
    ("esc-byte-raw", SPEC.replace("name: t", "name: t\x1b[31m").encode(), "DYN001", 2),
    ("c1-byte-raw", SPEC.replace("name: t", "name: t\x85\x9b").encode(), "DYN001", 2),
    ("lone-surrogate-escape", HEAD + 'pools: {agg: {}}\nname2: "\\ud800"\n', "DYN010", 5),
    ("bad-escape", HEAD + 'pools: {agg: {}}\nx: "\\q"\n', "DYN001", 5),
    ("huge-int", HEAD + "pools: {agg: {replicas: " + "9" * 5000 + "}}\n", "DYN001", 4),
    ("huge-int-in-extra", HEAD + "pools: {agg: {engine: {extra: {n: " + "1" * 4400 + "}}}}\n", "DYN001", 4),
    ("sexagesimal", HEAD + "pools: {agg: {replicas: 1:30}}\n", "DYN012", 4),
    ("tab-indent", "apiVersion: dyncc/v1\n\tname: x\n", "DYN001", 2),
    ("unclosed-flow", HEAD + "pools: {agg: {replicas: [1, 2}\n", "DYN001", 4),
    ("unclosed-quote", HEAD + 'name2: "abc\n', "DYN001", 4),
    ("deep-flow-100k", "a: " + "[" * 100_000 + "]" * 100_000 + "\n", "DYN012", 1),
    ("deep-block", "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n", "DYN012", 65),
    ("int-key", "apiVersion: dyncc/v1\n1: 2\n", "DYN012", 1),
    ("list-document", "- 1\n- 2\n", "DYN003", 1),
    ("empty-document", "", "DYN003", 1),
    ("only-doc-end", "...\n", "DYN001", 1),
]


def _validate_text(tmp_path: Path, text: str | bytes, name: str = "odd.yaml") -> tuple[list[tuple[str, int]], float]:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    start = time.monotonic()
    result = validate(path)
    took = time.monotonic() - start
    return [(d.code, d.location.line if d.location else 0) for d in result.diagnostics if d.is_error], took


@pytest.mark.parametrize(("text", "code", "line"), [o[1:] for o in ODDITIES], ids=[o[0] for o in ODDITIES])
def test_yaml_oddity_is_a_coded_error_at_its_line(tmp_path, text, code, line):
    errors, took = _validate_text(tmp_path, text)
    assert (code, line) in errors, errors
    assert took < 20, f"took {took:.1f} s"


def test_there_are_at_least_fifty_oddities():
    assert len(ODDITIES) >= 50 and len({o[0] for o in ODDITIES}) == len(ODDITIES)


def test_oddities_through_the_cli_never_crash(tmp_path):
    """All of them in one `validate`: exit 1, a coded error per file, no traceback, no internal error."""
    paths = []
    for i, (_, text, _, _) in enumerate(ODDITIES):
        path = tmp_path / f"o{i:02d}.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        paths.append(path)
    proc = cli("validate", "--format", "json", *paths)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "internal error" not in proc.stderr, proc.stderr
    files = json.loads(proc.stdout)["files"]
    assert len(files) == len(ODDITIES)
    for report in files:
        assert not report["valid"] and report["diagnostics"], report
        assert all(CODE.fullmatch(d["code"]) and d["line"] >= 1 for d in report["diagnostics"]), report


def test_the_directive_reproducer_from_the_issue(tmp_path):
    (tmp_path / "y.yaml").write_text("a: 1\n%YAML 9.9\n")
    proc = run_dyncc("validate", "y.yaml", cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 1
    assert "y.yaml:2:1: error DYN001" in proc.stderr, proc.stderr


# --- bounds: alias bombs, dense files, devices ---------------------------------------------------


def _laughs(levels: int, width: int = 10) -> str:
    lines = [SPEC, "x:\n", f"  a0: &a0 [{', '.join(['lol'] * width)}]\n"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]\n")
    return "".join(lines)


@pytest.mark.parametrize("levels", [5, 9, 30])
def test_alias_bomb_is_refused_quickly(tmp_path, levels):
    errors, took = _validate_text(tmp_path, _laughs(levels))
    assert "DYN017" in {code for code, _ in errors}, errors
    assert took < 10, f"took {took:.1f} s"


def test_aliases_within_the_limit_still_work(tmp_path):
    text = HEAD + "pools:\n  prefill: &p {replicas: 1}\n  decode: *p\n"
    errors, _ = _validate_text(tmp_path, text)
    assert "DYN017" not in {code for code, _ in errors}, errors


@pytest.mark.parametrize(
    "body",
    [
        "benchmark: {concurrency: [" + ",".join(["1"] * 400_000) + "]}\n",  # the dense list of D-09
        "x:\n" + "".join(f"  k{i}: {i}\n" for i in range(60_000)),
        "x: [" + "[]," * 300_000 + "]\n",
        "x:\n" + "- \n" * 300_000,
    ],
    ids=["dense-flow-list", "many-keys", "many-empty-lists", "many-null-items"],
)
def test_element_count_is_bounded_in_time(tmp_path, body):
    text = SPEC + body
    assert len(text) <= MAX_SPEC_BYTES
    errors, took = _validate_text(tmp_path, text)
    assert "DYN018" in {code for code, _ in errors}, errors
    assert took < 20, f"took {took:.1f} s"


def test_a_spec_just_under_the_node_limit_is_read(tmp_path):
    text = SPEC + "benchmark: {concurrency: [" + ",".join(["1"] * (MAX_NODES - 50)) + "]}\n"
    errors, _ = _validate_text(tmp_path, text)
    assert not {"DYN018", "DYN001"} & {code for code, _ in errors}, errors


def test_over_the_byte_cap_is_refused_without_parsing(tmp_path):
    text = SPEC + "x: [" + ",".join(["1"] * (MAX_SPEC_BYTES // 2)) + "]\n"
    errors, took = _validate_text(tmp_path, text)
    assert errors == [("DYN001", 1)] and took < 2, (errors, took)


def test_only_regular_files_are_read_and_never_block(tmp_path):
    """A device, a FIFO without a writer, a directory: refused at once (DYN002), not read until memory or
    time runs out; a file over the cap is refused by its size (DYN001) before it is parsed."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, kind in (("/dev/zero", "a character device"), (fifo, "a FIFO"), (tmp_path, "Is a directory")):
        started = time.monotonic()
        result = validate(path)
        assert time.monotonic() - started < 2
        assert [d.code for d in result.diagnostics] == ["DYN002"], result.diagnostics
        assert kind in result.diagnostics[0].message and str(path) == result.diagnostics[0].location.file
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_SPEC_BYTES + 1))
    (too_big,) = validate(big).diagnostics
    assert too_big.code == "DYN001" and "larger than" in too_big.message


def test_unreadable_paths_are_read_errors(tmp_path):
    for path in (tmp_path / "missing.yaml", tmp_path, tmp_path / ("a" * 300 + ".yaml")):
        codes = [d.code for d in validate(path).diagnostics]
        assert codes == ["DYN002"], (path, codes)


# --- model directory: a path too long, a config.json nested too deep ---------------------------


def test_model_path_too_long_is_a_read_error_and_json_is_still_printed(tmp_path):
    (tmp_path / "long.yaml").write_text(SPEC.replace("path: m", "path: " + "a" * 300))
    (tmp_path / "ok.yaml").write_text(SPEC)
    proc = cli("validate", "--format", "json", "long.yaml", "ok.yaml", cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 1
    long, ok = json.loads(proc.stdout)["files"]
    assert [(d["code"], d["line"]) for d in long["diagnostics"]] == [("DYN019", 3)], long
    assert ok["valid"] and "DYN505" not in proc.stdout + proc.stderr


def test_deeply_nested_config_json_is_a_coded_error(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "s.yaml").write_text(SPEC.replace("path: m, moe: false", "path: model"))
    proc = cli("validate", "s.yaml", cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and "s.yaml:3:" in proc.stderr and "error DYN015" in proc.stderr, proc.stderr


# --- the CLI boundary ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-5", "1e300"])
@pytest.mark.parametrize("command", ["up", "sweep"])
def test_timeout_must_be_finite_seconds(tmp_path, command, value):
    (tmp_path / "s.yaml").write_text(SPEC)
    proc = cli(command, "s.yaml", "-o", "out", "--timeout", value, cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 2 and "--timeout" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_unexpected_error_is_one_line_and_exit_3(tmp_path, monkeypatch):
    import dyncc.api

    def broken(path, *targets):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(dyncc.api, "validate", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    proc = cli("validate", "x.yaml")
    assert "Traceback" not in proc.stderr + proc.stdout  # (assert_no_traceback also refuses the one-line report)
    assert proc.returncode == 3
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("dyncc: internal error, this is a bug in dyncc (ZeroDivisionError)"), line
    trace = Path(line.rsplit(" ", 1)[-1])
    assert trace.parent == tmp_path and "ZeroDivisionError: boom" in trace.read_text()


def test_an_internal_error_through_the_real_interpreter_exits_3(tmp_path):
    # `graph --format svg` runs Graphviz; a `dot` that fails is an error dyncc does not expect.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\nexit 7\n")
    (fake / "dot").chmod(0o755)
    (tmp_path / "s.yaml").write_text(SPEC)
    import os
    import subprocess
    import sys

    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dyncc", "graph", "s.yaml", "--format", "svg"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 3 and "internal error, this is a bug in dyncc" in proc.stderr, proc.stderr
    assert list(tmp_path.glob("dyncc-crash-*.txt"))


@pytest.mark.parametrize(("inside_output", "code"), [(True, "DYN505"), (False, "DYN020")])
def test_os_errors_say_whether_reading_or_writing_failed(tmp_path, monkeypatch, inside_output, code):
    import dyncc.api

    (tmp_path / "s.yaml").write_text(SPEC)
    failing = tmp_path / ("out/local/launch.sh" if inside_output else "model/config.json")

    def build(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(failing))

    monkeypatch.setattr(dyncc.api, "build", build)
    proc = cli("build", "s.yaml", "-o", "out", cwd=tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 1 and f"error {code}" in proc.stderr, proc.stderr
    assert ("cannot write" in proc.stderr) == inside_output


# --- terminal escapes ------------------------------------------------------------------------------

ESC_KEY = '"\\e]0;PWNED\\a\\e[2J\\e[31mKEY"'


def _assert_escaped(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text[:300])
    assert "\\x1b" in text, text[:300]


def test_validate_escapes_control_characters_from_the_spec(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC + f"{ESC_KEY}: 1\n")
    proc = cli("validate", "s.yaml", cwd=tmp_path)
    assert proc.returncode == 1 and "DYN010" in proc.stderr
    _assert_escaped(proc.stderr)


def test_explain_diff_and_sweep_escape_control_characters(tmp_path):
    spec = HEAD + f"pools: {{agg: {{engine: {{extra: {{model_kwargs: {{{ESC_KEY}: 1}}}}}}}}}}\n"
    (tmp_path / "e.yaml").write_text(spec)
    (tmp_path / "plain.yaml").write_text(SPEC)
    (tmp_path / "sw.yaml").write_text(spec + 'sweep: {pools.agg.replicas: ["\\e[31mRED", 1]}\n')
    explain = cli("explain", "e.yaml", cwd=tmp_path)
    assert explain.returncode == 0, explain.stderr
    _assert_escaped(explain.stdout)
    diff = cli("diff", "plain.yaml", "e.yaml", cwd=tmp_path)
    assert diff.returncode == 0, diff.stderr
    _assert_escaped(diff.stdout)
    sweep = cli("sweep", "sw.yaml", "-o", "out", cwd=tmp_path)
    assert_no_traceback(sweep)
    _assert_escaped(sweep.stdout + sweep.stderr)


def test_long_source_lines_are_clipped_around_the_error(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC + "x: [" + ",".join(["1"] * 30_000) + "]\n")
    proc = cli("validate", "s.yaml", cwd=tmp_path)
    assert "DYN018" in proc.stderr
    assert max(len(line) for line in proc.stderr.splitlines()) < 400


def test_an_anchor_defined_twice_is_a_located_warning_not_a_python_warning(tmp_path):
    """YAML allows it (later aliases mean the newer value); dyncc says so as DYN023 at the second definition,
    and ruamel's ReusedAnchorWarning (a Python warning naming dyncc's own source file) is not printed."""
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: x\nmodel: {path: Qwen/Qwen3-0.6B, moe: false}\n"
        "pools:\n  prefill: &p {replicas: 1}\n  decode: &p {replicas: 2}\n"
    )
    proc = run_dyncc("validate", spec)
    assert proc.returncode == 0
    assert "s.yaml:6:11: warning DYN023: anchor &p is defined again (first at line 5)" in proc.stdout + proc.stderr
    assert "ReusedAnchorWarning" not in proc.stdout + proc.stderr and "bounded_yaml.py" not in proc.stderr
