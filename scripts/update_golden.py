"""Regenerate tests/golden/: every example's output for every target (and the 0.x profile), rendered in
memory through the library API. Run it only when an output change is intended, and commit the diff with
the change that caused it; tests/test_golden.py fails on any other change.

    .venv/bin/python scripts/update_golden.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
sys.path.insert(0, str(ROOT))

from dyncc.tools.golden import render_example_outputs  # noqa: E402


def main() -> None:
    shutil.rmtree(GOLDEN, ignore_errors=True)
    count = 0
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        for relative, text in render_example_outputs(example).items():
            path = GOLDEN / example.stem / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            count += 1
    print(f"wrote {count} files under {GOLDEN.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
