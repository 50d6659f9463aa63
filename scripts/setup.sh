#!/usr/bin/env bash
# Installs everything dyncc and its test suite need into the project venv .venv (or into the active venv,
# which .venv then links to), never into the system Python: every pip call runs in a venv, under
# PIP_REQUIRE_VIRTUALENV, so it works where the system Python is externally managed (PEP 668: Debian 12+,
# Ubuntu 23.04+). On Debian/Ubuntu it also installs, with apt (as root, or through sudo), the system
# packages named below, saying which and why. Safe to run again.
#
#   scripts/setup.sh              everything: dyncc with its test, docs and dev tools, Dynamo 1.6.1 (frontend +
#                                 mock engine, CPU only), Dynamo 0.5.1 and AIConfigurator in venvs of their own
#                                 under .cache/, the system packages the tests use
#   scripts/setup.sh --minimal    the venv and dyncc alone: compile, validate, draw (no apt, no Dynamo)
#
# Then run dyncc as .venv/bin/dyncc (or `source .venv/bin/activate`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

minimal=false
case "${1:-}" in
  "") ;;
  --minimal) minimal=true ;;
  *) echo "usage: scripts/setup.sh [--minimal]" >&2; exit 2 ;;
esac

say() { echo "setup: $*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_install() {  # apt_install WHY PACKAGE...: only the missing ones, saying why
  local why=$1 missing=() pkg
  shift
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    say "not a Debian/Ubuntu system: install ${missing[*]} yourself ($why)" >&2
    return 1
  fi
  say "installing with apt (system-wide): ${missing[*]} — $why"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# --- the venv -------------------------------------------------------------------------------------------

# A Python that can make a venv: 3.10 or newer, with venv and ensurepip (Debian ships them apart from
# python3, in python3-venv).
can_make_venv() { "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; }
base_python() {
  local candidate
  for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11 python3.10 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && can_make_venv "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

VENV=$PWD/.venv  # the README's commands run .venv/bin/...: it is the venv, or a link to the active one
if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ] &&
  [ "$(cd "$VIRTUAL_ENV" && pwd -P)" != "$(cd "$VENV" 2>/dev/null && pwd -P)" ]; then
  if [ -e "$VENV" ] && [ ! -L "$VENV" ]; then
    say "the active venv is $VIRTUAL_ENV, but .venv is another one: deactivate to use .venv, or remove it" >&2
    exit 1
  fi
  ln -sfn "$VIRTUAL_ENV" "$VENV"
  say "using the active venv $VIRTUAL_ENV (.venv links to it)"
elif ! "$VENV/bin/python" -c pass >/dev/null 2>&1; then  # missing, or the Python it was made from is gone
  if ! BASE=$(base_python); then
    apt_install "the system Python lacks venv/ensurepip, which making the project venv needs" python3-venv
    BASE=$(base_python) || { say "no Python >= 3.10 with venv found (set PYTHON=...)" >&2; exit 1; }
  fi
  if [ -L "$VENV" ]; then rm "$VENV"; fi  # a link to a venv that is gone
  say "creating the venv $VENV from $BASE ($("$BASE" --version 2>&1))"
  "$BASE" -m venv --clear "$VENV"
else
  say "using the venv $VENV"
fi
PY=$VENV/bin/python
# Belt and braces: pip refuses any install outside a venv, whatever this script or a requirement asks.
export PIP_REQUIRE_VIRTUALENV=1 PIP_USER=0 PIP_ROOT_USER_ACTION=ignore
pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }

if $minimal; then
  pip_install -e .
  "$PY" -m compileall -q dyncc
  "$PY" -c "import dyncc; print('setup: dyncc', dyncc.__version__, 'in $VENV')"
  exit 0
fi

# --- system packages (apt) ------------------------------------------------------------------------------

apt_install "generated launch scripts and job files are linted with it" shellcheck
apt_install "a private Slurm test cluster runs the sbatch jobs dyncc writes (scripts/slurm/test-cluster.sh)" \
  slurm-wlm munge libslurm-dev gcc
apt_install "dyncc graph --format svg|png draws with Graphviz" graphviz
apt_install "Dynamo 0.x needs etcd and NATS (discovery and request planes); its profile is run for real" \
  etcd-server nats-server
apt_install "docker-compose config -q checks the compose target's files offline" docker-compose

# --- dyncc, its tools and Dynamo, in the venv -----------------------------------------------------------

pip_install -e ".[test,bench,dev,docs]"
# Bytecode for dyncc's own modules, as pip writes it for an installed wheel: an editable install under
# PYTHONDONTWRITEBYTECODE (set on these machines) would otherwise recompile them on every run.
"$PY" -m compileall -q dyncc
# Dynamo 1.6.1 without its unreachable placeholder dependency (see requirements/dynamo-1.6.1.txt).
# A metadata-only placeholder for aisimulate (requirements/aisimulate-placeholder), so pip's resolver has no
# missing dependency of ai-dynamo to report on every later install.
pip_install ./requirements/aisimulate-placeholder
pip_install --no-deps ai-dynamo==1.6.1 ai-dynamo-runtime==1.6.1
pip_install -r requirements/dynamo-1.6.1.txt
# Dynamo 0.5.1 in its own venv: its argument parsers check what the 0.x (2025) profile writes.
if [ ! -x .cache/dynamo-0.5.1/bin/python ]; then
  "$PY" -m venv .cache/dynamo-0.5.1
  .cache/dynamo-0.5.1/bin/python -m pip install --quiet --disable-pip-version-check ai-dynamo==0.5.1
fi
# The ai-dynamo + ai-dynamo-runtime wheels of nine releases, unpacked (not installed) in .cache/wheels/: their
# own parsers check what dyncc writes for each (tests/test_release_parsers.py), the 1.3.1, 1.4.2 and 1.5.1
# frontends show which router policy file each reads (tests/test_router_policy.py), and 1.0.2 to 1.5.1 run
# dyncc's local deployment for real with their mock engine (tests/test_release_runs.py). Fetched once.
for release in 0.5.1 0.8.1 1.0.2 1.1.1 1.2.1 1.3.1 1.4.2 1.5.1 1.6.1; do
  "$PY" scripts/release_flags.py "$release" --download >/dev/null
done
# AIConfigurator 0.12.0 in its own venv: `dyncc init --from-sla`, `dyncc estimate` and the timed twin run it
# in a subprocess (its dependencies never meet Dynamo's).
if [ ! -x .cache/aiconfigurator/bin/python ]; then
  "$PY" -m venv .cache/aiconfigurator
  .cache/aiconfigurator/bin/python -m pip install --quiet --disable-pip-version-check aiconfigurator==0.12.0
fi
# Mermaid's parser (npm, pinned by the lockfile) for the graph tests.
if command -v npm >/dev/null 2>&1; then
  npm ci --silent --no-audit --no-fund --prefix tools/mermaid-check
fi
"$PY" -c "import dyncc, dynamo.frontend, dynamo.mocker; print('setup: dyncc and Dynamo 1.6.1 installed in $VENV')"
