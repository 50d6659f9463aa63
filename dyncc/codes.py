"""The registry of diagnostic codes (``codes.yaml`` beside this file): title, severity, explanation and the
invalid example that triggers each code. ``dyncc explain-code`` prints an entry; the docs are generated
from it; a test keeps it complete.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

import msgspec
import yaml

CODE_PATTERN = re.compile(r"^DYN\d{3}$")
FAMILIES = {
    "0": "loading",
    "1": "parallelism, speculation and engine keys",
    "2": "disaggregation",
    "3": "routing",
    "4": "topology and placement",
    "5": "targets and output",
    "6": "planner",
    "7": "versions",
    "8": "sweeps",
    "90": "sla and estimates",
    "91": "the timed twin (mock-engine timing)",
    "92": "the SLA gate (benchmarks of running deployments)",
    "95": "import",
    "96": "import",
    "97": "import",
}


class CodeInfo(msgspec.Struct, frozen=True):
    code: str
    severity: str
    title: str
    explanation: str
    no_example_because: str | None  # set when no spec can show the code (it concerns files, not spec content)
    # Severities it may also be raised at (a target's refusal becomes an info note when `-t all` skips it);
    # ``severity`` is the one documented and given to SARIF.
    also_raised_as: tuple[str, ...] = ()

    @property
    def severities(self) -> tuple[str, ...]:
        """Every severity this code may be raised at."""
        return (self.severity, *self.also_raised_as)

    @property
    def family(self) -> str:
        # Most families are one digit; the 9xx codes split into two-digit families.
        return FAMILIES.get(self.code[3:5]) or FAMILIES[self.code[3]]


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, CodeInfo]:
    text = resources.files("dyncc").joinpath("codes.yaml").read_text(encoding="utf-8")
    entries = yaml.safe_load(text)
    out = {}
    for code, entry in entries.items():
        example = entry.get("example")
        out[code] = CodeInfo(
            code=code,
            severity=entry["severity"],
            title=entry["title"],
            explanation=" ".join(entry["explain"].split()),
            no_example_because=example.split("—", 1)[-1].strip() if example else None,
            also_raised_as=tuple(entry.get("also_raised_as", ())),
        )
    return out


def lookup(code: str) -> CodeInfo | None:
    return registry().get(code.upper())


def code_range() -> str:
    """``from DYN001 to DYN971``: the lowest and highest registered codes, read from the registry so that a
    message naming the range cannot fall behind a new code."""
    codes = sorted(registry())
    return f"from {codes[0]} to {codes[-1]}"


def example_for(code: str, examples_dir: Path) -> Path | None:
    """The invalid example that shows ``code``: ``examples/invalid/<CODE>_*.yaml``."""
    return next(iter(sorted(examples_dir.glob(f"{code}_*.yaml"))), None)
