"""`dyncc lsp` end to end: the real server over stdio (pytest-lsp's client), as an editor drives it.

Open an example, edit it, and receive dyncc's own diagnostics (DYN codes at their ranges); hover a key for its
schema description and an engine value's origin; complete keys and enum values.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT

pytest_lsp = pytest.importorskip("pytest_lsp", reason="pytest-lsp (test extra) runs the language server")
pytest.importorskip("pygls", reason="pygls is the `lsp` extra")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "dyncc.lsp"],
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
