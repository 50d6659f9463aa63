"""Run a compiled local mocker deployment as a timed twin, and measure it.

Until ``--timing`` is wired into ``dyncc up`` and the mock targets, this puts the timing file on the mock
workers' command lines of an already built ``launch.sh`` (a copy, ``launch-twin.sh``), then starts it
with :class:`dyncc.run.Deployment` like ``dyncc up`` does.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from dyncc.targets.shell import quote

MOCKER = " -m dynamo.mocker "


def timed_launch(launch: Path, timing: dict[str, Path]) -> Path:
    """``launch-twin.sh`` beside ``launch``: each mock worker of pool P reads ``timing[P]``.

    Each worker's command is a shell function (``worker_0() { exec env ... -m dynamo.mocker ...; }``) that
    ``start_worker agg-0 worker_0`` starts (and restarts); a pool without a file keeps the mocker's
    built-in timing."""
    text = launch.read_text()
    role_of = {fn: role for role, fn in re.findall(r"^start_worker (\w+)-\d+ (\w+)$", text, flags=re.M)}
    lines, function = [], None
    for line in text.splitlines(keepends=True):
        opened = re.match(r"^(\w+)\(\) \{", line)
        if opened:
            function = opened.group(1)
        elif line.startswith("}"):
            function = None
        role = role_of.get(function or "")
        if role in timing and MOCKER in line:
            line = line.replace(MOCKER, f"{MOCKER}--planner-profile-data {quote(str(timing[role]))} ", 1)
        lines.append(line)
    out = launch.with_name("launch-twin.sh")
    out.write_text("".join(lines))
    out.chmod(0o755)
    return out


def stream_timing(url: str, model: str, prompt: str, max_tokens: int, timeout: float = 120) -> tuple[float, float, int]:
    """One streaming completion: (TTFT ms, mean inter-token ms, tokens streamed), measured here."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "min_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
    }
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
