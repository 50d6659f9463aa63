"""`dyncc lsp` end to end: the real server over stdio (pytest-lsp's client), as an editor drives it.

Open an example, edit it, and receive dyncc's own diagnostics (DYN codes at their ranges); hover a key for its
schema description and an engine value's origin; complete keys and enum values. The editor shows what
`dyncc validate` reports (target checks and sweep points too); a burst of edits is linted once, at its last
version; an absurd Content-Length is skipped with a coded error (a raw stdio client, which can lie).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, run_dyncc

pytest_lsp = pytest.importorskip("pytest_lsp", reason="pytest-lsp (test extra) runs the language server")
pytest.importorskip("pygls", reason="pygls is the `lsp` extra")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

# Each test starts a real language server process and waits out its debounce: the full suite runs them,
# the inner loop (-m "not slow") does not.
pytestmark = pytest.mark.slow

SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "dyncc.tools.lsp"],
    server_env={**os.environ, "PYTHONPATH": str(ROOT)},
)


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"), root_uri=ROOT.as_uri())
    )
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "agg.yaml"
    shutil.copy(EXAMPLES / "agg.yaml", path)
    return path


def _open(client: LanguageClient, path: Path) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=path.read_text())
        )
    )
    return uri


async def _edit(client: LanguageClient, uri: str, text: str, version: int) -> list[types.Diagnostic]:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


def _range(d: types.Diagnostic) -> tuple[int, int, int, int]:
    return d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character


@pytest.mark.asyncio
async def test_diagnostics_follow_the_edits(client: LanguageClient, spec: Path):
    uri = _open(client, spec)
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri]) == []
    text = spec.read_text()

    # TP 3 fits the 8-GPU node, but does not divide Qwen3-0.6B's 16 attention heads: DYN124 at the value typed.
    found = await _edit(client, uri, text.replace("tensor_parallel: 1", "tensor_parallel: 3"), 2)
    assert [d.code for d in found] == ["DYN124"]
    assert _range(found[0]) == (16, 21, 16, 22)  # `    tensor_parallel: 3`, line 17

    # TP 9: more GPUs than the cluster has (DYN403 at cluster.nodes), a worker spanning nodes unevenly
    # (DYN404) and the heads again (DYN124), each at the range of its value.
    found = await _edit(client, uri, text.replace("tensor_parallel: 1", "tensor_parallel: 9"), 3)
    by_code = {d.code: d for d in found}
    assert set(by_code) == {"DYN403", "DYN404", "DYN124"}
    assert _range(by_code["DYN404"]) == (16, 21, 16, 22)  # `    tensor_parallel: 9`, line 17
    assert _range(by_code["DYN403"]) == (11, 9, 11, 10)  # `  nodes: 1`, line 12
    assert all(d.severity == types.DiagnosticSeverity.Error and d.source == "dyncc" for d in found)
    assert "hint:" in by_code["DYN404"].message

    # A loader error (not only rules): an unknown key, with its range.
    found = await _edit(client, uri, text.replace("tensor_parallel: 1", "tensor_paralel: 1"), 4)
    (unknown,) = found
    assert unknown.code == "DYN010" and _range(unknown) == (16, 4, 16, 18)

    assert await _edit(client, uri, text, 5) == []  # fixed again: the diagnostics clear


@pytest.mark.asyncio
async def test_hover_gives_the_schema_and_the_engine_values_origin(client: LanguageClient, spec: Path):
    uri = _open(client, spec)
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    lines = spec.read_text().splitlines()
    row = lines.index("      free_gpu_memory_fraction: 0.85")
    hover = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(row, 8))
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    text = hover.contents.value
    assert "**pools.agg.engine.free_gpu_memory_fraction**" in text
    assert (
        f"`kv_cache_config.free_gpu_memory_fraction: 0.85` — set in spec: pools.agg.engine.free_gpu_memory_fraction (line {row + 1})"
        in text
    )

    engine_row = lines.index("    engine:")
    hover = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(engine_row, 6))
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert "`kv_cache_config.tokens_per_block: 32` — default" in hover.contents.value


@pytest.mark.asyncio
async def test_completion_of_keys_and_enum_values(client: LanguageClient, spec: Path):
    text = spec.read_text().replace("  gpu_type: H100\n", "  gpu_type: H100\nrouter:\n  mode: \n  \n")
    spec.write_text(text)
    uri = _open(client, spec)
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    lines = text.splitlines()
    mode_row = lines.index("  mode: ")
    values = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(mode_row, 8))
    )
    assert isinstance(values, types.CompletionList)
    assert [i.label for i in values.items] == [
        "round-robin",
        "random",
        "power-of-two",
        "kv",
        "direct",
        "least-loaded",
        "device-aware-weighted",
    ]
    keys = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(mode_row + 1, 2))
    )
    assert isinstance(keys, types.CompletionList)
    labels = {i.label for i in keys.items}
    assert {"block_size", "kv_events", "temperature"} <= labels and "mode" not in labels  # `mode` is written
    assert all(i.insert_text == f"{i.label}: " for i in keys.items)


# --- the same checks as `dyncc validate` ------------------------------------------------------------

HEAD = "apiVersion: dyncc/v1\nname: {name}\nmodel: {{path: Qwen/Qwen3-0.6B, moe: false}}\npools: {{agg: {{replicas: 1}}}}\n"
# Specs the loader and the rules accept but validate refuses: a target's check (slurm option line, a k8s
# name too long, a patch that breaks the CRD schema), or every point of a sweep.
VALIDATE_ONLY = {
    "DYN560": HEAD.format(name="adv") + "slurm: {extra_sbatch: ['--comment=a;id']}\n",
    "DYN504": HEAD.format(name="a" * 60),
    "DYN546": HEAD.format(name="adv") + "k8s: {pools: {agg: {merge: {name: null}}}}\n",
    "DYN804": HEAD.format(name="adv") + "cluster: {gpus_per_node: 8}\nsweep: {pools.agg.tensor_parallel: [16, 32]}\n",
}


@pytest.mark.asyncio
@pytest.mark.parametrize("code", sorted(VALIDATE_ONLY))
async def test_the_editor_shows_what_validate_reports(client: LanguageClient, tmp_path: Path, code: str):
    path = tmp_path / "spec.yaml"
    path.write_text(VALIDATE_ONLY[code])
    _open(client, path)
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    shown = {(d.code, d.range.start.line + 1, d.severity) for d in client.diagnostics[path.as_uri()]}

    validated = run_dyncc("validate", "--format", "json", path)  # the real CLI, as CI runs it
    assert validated.returncode == 1, validated.stdout + validated.stderr
    severity = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}
    severity["info"] = types.DiagnosticSeverity.Information
    reported = {
        (d["code"], d["line"], severity[d["severity"]]) for d in json.loads(validated.stdout)["files"][0]["diagnostics"]
    }
    assert code in {c for c, _, _ in reported}
    assert shown == reported


# --- bounded work and messages: a raw client over stdio --------------------------------------------


class RawClient:
    """JSON-RPC over the server's stdin/stdout, byte for byte (pytest-lsp's client cannot send a lie)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dyncc", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.messages: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = self.proc.stdout.read(1)
                if not byte:
                    self.messages.put(None)
                    return
                header += byte
            length = int(header.split(b":")[1].split(b"\r\n")[0])
            self.messages.put(json.loads(self.proc.stdout.read(length)))

    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def until(self, wanted, timeout: float) -> tuple[dict, list[dict]]:
        """The first message ``wanted`` accepts, and every message before it."""
        deadline, seen = time.monotonic() + timeout, []
        while True:
            message = self.messages.get(timeout=max(deadline - time.monotonic(), 0.001))
            assert message is not None, f"the server closed its output; exit code {self.proc.wait(10)}"
            if wanted(message):
                return message, seen
            seen.append(message)

    def pending(self) -> list[dict]:
        """The messages received and not yet looked at."""
        found = []
        while not self.messages.empty():
            message = self.messages.get_nowait()
            if message is not None:
                found.append(message)
        return found

    def initialize(self) -> None:
        self.send({"id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {}}})
        self.until(lambda m: m.get("id") == 1, 30)
        self.send({"method": "initialized", "params": {}})

    def open(self, uri: str, text: str) -> None:
        document = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        self.send({"method": "textDocument/didOpen", "params": {"textDocument": document}})

    def shutdown(self) -> int:
        self.send({"id": 99, "method": "shutdown"})
        self.until(lambda m: m.get("id") == 99, 30)
        self.send({"method": "exit"})
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def raw():
    client = RawClient()
    yield client
    client.kill()


def _published(version: int):
    return lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("version") == version


def test_a_burst_of_edits_is_linted_once_at_its_last_version(raw: RawClient):
    # 16 KB of spec: a benchmark list of 8000 values takes about a second to load, so linting every one of
    # 200 edits in turn left the diagnostics minutes behind the text.
    uri = "file:///burst/spec.yaml"
    text = HEAD.format(name="burst") + "benchmark: {concurrency: [" + ",".join(["1"] * 8000) + "]}\n"
    raw.initialize()
    raw.open(uri, text)
    raw.until(_published(1), 60)
    last = 201
    start = time.monotonic()
    for version in range(2, last + 1):
        edited = text + f"# edit {version}\n" + ("router: {mode: nope}\n" if version == last else "")
        change = {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": edited}]}
        raw.send({"method": "textDocument/didChange", "params": change})
    final, before = raw.until(_published(last), 60)
    behind = time.monotonic() - start
    lints = [m for m in before if m.get("method") == "textDocument/publishDiagnostics"]
    # Linted after the edits paused, not once per edit (a slow machine may pause mid-burst now and then).
    assert len(lints) <= 5, [m["params"]["version"] for m in lints]
    assert behind < 30, f"the last edit's diagnostics came {behind:.1f} s after the burst began"
    assert [d["code"] for d in final["params"]["diagnostics"]] == ["DYN014"]  # the last text's own error
    time.sleep(1.5)  # nothing stale arrives after it
    assert not [m for m in raw.pending() if m.get("method") == "textDocument/publishDiagnostics"]
    assert raw.shutdown() == 0


def test_an_absurd_content_length_is_skipped_with_a_coded_error(raw: RawClient):
    raw.initialize()
    raw.send_bytes(b"Content-Length: 1000000000000\r\n\r\n{}")  # claims 10**12 bytes, sends two
    shown, _ = raw.until(lambda m: m.get("method") == "window/showMessage", 30)
    assert "DYN030" in shown["params"]["message"] and shown["params"]["type"] == 1  # an error, to the user
    # The server goes on: the next message is read and answered, and it exits cleanly when told to.
    uri = "file:///after/spec.yaml"
    raw.open(uri, HEAD.format(name="a" * 60))
    published, _ = raw.until(_published(1), 60)
    assert "DYN504" in {d["code"] for d in published["params"]["diagnostics"]}
    assert raw.shutdown() == 0


def test_a_message_over_the_cap_is_read_past_not_into_memory(raw: RawClient):
    from dyncc.tools.lsp import MAX_MESSAGE_BYTES

    raw.initialize()
    # Really sent this time: a didOpen one byte over the cap. It is skipped (its bytes dropped as they come),
    # and the message after it is answered.
    body = json.dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"pad": ""}}).encode()
    body = body.replace(b'"pad": ""', b'"pad": "' + b"x" * (MAX_MESSAGE_BYTES + 1 - len(body)) + b'"')
    assert len(body) == MAX_MESSAGE_BYTES + 1
    raw.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    shown, _ = raw.until(lambda m: m.get("method") == "window/showMessage", 30)
    assert "DYN030" in shown["params"]["message"]
    assert raw.shutdown() == 0
