"""Measure a running timed twin from outside, as a client sees it (TTFT and inter-token latency of one
streamed completion), and run a built deployment's aiperf load test."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from dyncc.tools.lifecycle.run import chat_request


def stream_timing(url: str, model: str, prompt: str, max_tokens: int, timeout: float = 120) -> tuple[float, float, int]:
    """One streaming completion: (TTFT ms, mean inter-token ms, tokens streamed), measured here."""
    body = chat_request(prompt, model, max_tokens, ignore_eos=True) | {"min_tokens": max_tokens, "stream": True}
    req = urllib.request.Request(
        f"{url}/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    start = time.monotonic()
    stamps: list[float] = []
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        for raw in resp:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                stamps.append(time.monotonic())
    if not stamps:
        raise RuntimeError("no tokens streamed")
    ttft = (stamps[0] - start) * 1000
    itl = (stamps[-1] - stamps[0]) * 1000 / max(1, len(stamps) - 1)
    return ttft, itl, len(stamps)


def run_bench(local_dir: Path, url: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(local_dir / "bench.sh"), url], capture_output=True, text=True, timeout=timeout)
