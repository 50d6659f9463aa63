#!/usr/bin/env bash
# The long fuzz run: 200,000 generated and mutated specs (default; pass another count as $1).
# Each must end in a successful build or coded errors with a location. Takes about an hour.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DYNCC_FUZZ_CASES="${1:-200000}" python3 -m pytest -q tests/test_fuzz.py -k "not cli"
