"""Download a Hugging Face model once into HF_HOME (the job's shared cache) and write where it landed.

Run by job.sbatch as one step on the head node, before any worker starts:
    python3 download.py MODEL REVISION OUT_FILE      (REVISION "" = the default branch)
Workers then serve the snapshot path written to OUT_FILE, offline.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: download.py MODEL REVISION OUT_FILE", file=sys.stderr)
        return 2
    model, revision, out_file = argv
    from huggingface_hub import snapshot_download

    path = snapshot_download(repo_id=model, revision=revision or None)
    with open(out_file, "w", encoding="utf-8") as f:
        f.write(path + "\n")
    print(f"dyncc-download: {model}@{revision or 'main'} -> {path} done at={time.time():.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
