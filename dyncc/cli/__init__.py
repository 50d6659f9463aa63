"""``dyncc`` command line: thin click commands over :mod:`dyncc.api`.

Exit status: 0 valid / built, 1 invalid spec or drift found, 2 usage error (click's own), 3 internal
error: a bug in dyncc, reported in one line that names the file holding the full trace.
"""

from __future__ import annotations

import gc

# Defining the commands imports the spec and every target's settings (pydantic models: hundreds of thousands
# of objects, nearly none garbage); the collector walking them again and again cost a build 5-15% of its CPU
# (benchmarks/results.md). It waits until they are made, and they are frozen: they live as long as the
# process, so later collections need not walk them. (A collection first would find ~700 unreachable objects,
# under 0.5 MB, and take 12 ms: longer than they are worth.)
_COLLECTING = gc.isenabled()
gc.disable()

from dyncc.cli import build_commands, spec_commands, view_commands  # noqa: E402 - registers the commands
from dyncc.cli.group import main  # noqa: E402
from dyncc.cli.lazy_commands import LAZY_COMMANDS  # noqa: E402

__all__ = ["LAZY_COMMANDS", "build_commands", "main", "spec_commands", "view_commands"]

gc.freeze()
if _COLLECTING:
    gc.enable()
