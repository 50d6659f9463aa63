"""Run Dynamo 1.6.1's mock engine on timing files: `python3 tests/mocker_replay.py FILE...`.

For each file, the worker's engine arguments are built from `--planner-profile-data FILE` by the mocker's own
argument parser and file check (as its main() does), and the engine runs a short offline replay (8 requests of 3000 prompt and 50 output
tokens): the same Rust engine and NPZ loader `python -m dynamo.mocker` starts, in a fraction of a second and
without a frontend. One JSON line per file: {"file", "runs", "error"}.
"""

from __future__ import annotations

import json
import sys


def main(files: list[str]) -> None:
    from dynamo.mocker.args import parse_args, resolve_planner_profile_data
    from dynamo.mocker.config import build_mocker_engine_args
    from dynamo.replay import run_synthetic_trace_replay

    for file in files:
        sys.argv = ["dynamo.mocker", "--model-path", "Qwen/Qwen3-0.6B", "--planner-profile-data", file]
        try:
            args = parse_args()
            # as dynamo.mocker's main does first: its Python check of the file, then the engine's own loader
            args.planner_profile_data = resolve_planner_profile_data(args.planner_profile_data).npz_path
            engine_args = build_mocker_engine_args(args)
            report = run_synthetic_trace_replay(3000, 50, 8, extra_engine_args=engine_args, replay_concurrency=4)
            runs, error = report.summary.get("completed_requests") == 8, None
        except Exception as exc:  # noqa: BLE001 - the engine's refusal, whatever its type, is the answer
            runs, error = False, (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        print(json.dumps({"file": file, "runs": runs, "error": error}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
