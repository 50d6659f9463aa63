"""Diagnostics latency of `dyncc lsp` after an edit: p50/p95 per example and over all, the real server over stdio.

For every spec in examples/ and examples/invalid/, the document is opened, then edited EDITS times (a comment
line changes, so the whole pipeline runs again each time); each latency is the wall time from sending
`textDocument/didChange` to receiving its `textDocument/publishDiagnostics`. Goal: p95 <= 50 ms.

    python3 benchmarks/lsp_latency.py [--edits 20] [--append benchmarks/results.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def _published(client: LanguageClient, uri: str, version: int) -> None:
    """Until the diagnostics of this version of the document arrive (earlier ones may still be in flight)."""
    while True:
        params = await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        if params.uri == uri and params.version == version:
            return


async def measure(specs: list[Path], edits: int) -> dict[str, list[float]]:
    client = make_test_lsp_client()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    await client.start_io(sys.executable, "-m", "dyncc.tools.lsp", env=env)
    await client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"), root_uri=ROOT.as_uri())
    )
    results: dict[str, list[float]] = {}
    for spec in specs:
        uri = spec.as_uri()
        text = spec.read_text()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=text))
        )
        await _published(client, uri, 1)
        latencies = []
        for n in range(edits):
            version = n + 2
            started = time.perf_counter()
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text=f"{text}\n# edit {n}\n")],
                )
            )
            await _published(client, uri, version)
            latencies.append((time.perf_counter() - started) * 1000)
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
        results[str(spec.relative_to(ROOT))] = latencies
    await client.shutdown_session()
    return results


def report(results: dict[str, list[float]], edits: int) -> str:
    every = [v for values in results.values() for v in values]
    slow = {name: v for name, v in results.items() if percentile(v, 95) > GOAL_MS}
    lines = [
        "## `dyncc lsp`: diagnostics latency after an edit",
        "",
        f"`python3 benchmarks/lsp_latency.py --edits {edits}`, {datetime.date.today()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores (shared). Wall time from `didChange` to its "
        f"`publishDiagnostics`, real server over stdio; {len(results)} specs x {edits} edits.",
        "",
        "| specs | edits | p50 ms | p95 ms | max ms | goal p95 |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| all {len(results)} | {len(every)} | {statistics.median(every):.1f} | {percentile(every, 95):.1f} | "
        f"{max(every):.1f} | <= {GOAL_MS:.0f} ms: {'met' if percentile(every, 95) <= GOAL_MS else 'missed'} |",
    ]
    for group, prefix in (("valid examples", "examples/"), ("invalid examples", "examples/invalid/")):
        values = [
            v
            for name, vs in results.items()
            if name.startswith(prefix) and name.count("/") == prefix.count("/")
            for v in vs
        ]
        if values:
            lines.append(
                f"| {group} | {len(values)} | {statistics.median(values):.1f} | {percentile(values, 95):.1f} | "
                f"{max(values):.1f} | |"
            )
    lines += ["", "Per spec (p50 / p95 ms):", ""]
    lines += [
        f"- {name}: {statistics.median(v):.1f} / {percentile(v, 95):.1f}"
        + (" **over the goal**" if name in slow else "")
        for name, v in sorted(results.items())
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--append", type=Path, default=None, help="append the section to this markdown file")
    parser.add_argument("specs", nargs="*", type=Path)
    args = parser.parse_args()
    specs = [p.resolve() for p in args.specs] or sorted((ROOT / "examples").glob("*.yaml")) + sorted(
        (ROOT / "examples" / "invalid").glob("*.yaml")
    )
    text = report(asyncio.run(measure(specs, args.edits)), args.edits)
    print(text)
    if args.append:
        with args.append.open("a", encoding="utf-8") as stream:
            stream.write("\n" + text)


if __name__ == "__main__":
    main()
