#!/usr/bin/env bash
# The long, exploring fuzz run: 200,000 generated and mutated specs by default (pass another count as $1),
# new random cases on every run (hypothesis profile `explore`; the test suite's `deterministic` profile replays the
# same cases each time). Each must end in a successful build or coded errors with a location. Takes about
# an hour. A failure prints the `@reproduce_failure` blob; add the case to REGRESSIONS in tests/test_fuzz.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DYNCC_FUZZ_CASES="${1:-200000}"
export DYNCC_HYPOTHESIS_PROFILE=explore
"${PYTHON:-.venv/bin/python}" -m pytest -q -p no:cacheprovider tests/test_fuzz.py -m slow  # the project venv (scripts/setup.sh)
