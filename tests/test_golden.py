"""Every example's output for every target and version profile equals the committed tree in tests/golden/.

An intended output change regenerates it (`.venv/bin/python scripts/update_golden.py`) in the same commit, so the
diff of tests/golden/ shows a reviewer exactly what changed on the cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import VALID_EXAMPLES

from dyncc.tools.golden import render_example_outputs

GOLDEN = Path(__file__).resolve().parent / "golden"


def _committed(example: Path) -> dict[str, str]:
    root = GOLDEN / example.stem
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.stem)
def test_output_equals_the_committed_golden_tree(example: Path) -> None:
    rendered, committed = render_example_outputs(example), _committed(example)
    assert sorted(rendered) == sorted(committed), "files added or removed: run scripts/update_golden.py on purpose"
    changed = [name for name in rendered if rendered[name] != committed[name]]
    assert not changed, f"output changed: {changed[:10]} (regenerate with scripts/update_golden.py if intended)"


def test_golden_tree_has_no_stale_example() -> None:
    assert {p.name for p in GOLDEN.iterdir()} == {p.stem for p in VALID_EXAMPLES}
