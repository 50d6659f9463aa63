#!/usr/bin/env bash
# Installs everything dyncc and its test suite need on a fresh Debian/Ubuntu machine (run as root or
# with sudo available): dyncc itself, the test tools, Dynamo 1.6.1 (frontend + mock engine, CPU only)
# and shellcheck. Safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# shellcheck: generated scripts are linted; Slurm + munge + libslurm-dev + gcc: the real test cluster
# (scripts/slurm/test-cluster.sh) that sbatch files are submitted to.
# graphviz: `dyncc graph --format svg|png`; nodejs/npm: Mermaid's own parser checks `dyncc graph --format mermaid`.
# etcd-server, nats-server: the discovery and request planes Dynamo 0.x needs (0.x profile, run for real).
# docker-compose: `docker-compose config -q` validates the compose target's files offline (tests/test_compose.py).
apt_packages=(shellcheck slurm-wlm munge libslurm-dev gcc graphviz etcd-server nats-server docker-compose)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

export PIP_ROOT_USER_ACTION=ignore
pip_install() { "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@"; }
pip_install -e ".[test,bench,dev]"
# Bytecode for dyncc's own modules, as pip writes it for an installed wheel: an editable install under
# PYTHONDONTWRITEBYTECODE (set on these machines) would otherwise recompile them on every run.
"$PYTHON" -m compileall -q dyncc
# Dynamo 1.6.1 without its unreachable placeholder dependency (see requirements/dynamo-1.6.1.txt).
# A metadata-only placeholder for aisimulate (requirements/aisimulate-placeholder), so pip's resolver has no
# missing dependency of ai-dynamo to report on every later install.
pip_install ./requirements/aisimulate-placeholder
pip_install --no-deps ai-dynamo==1.6.1 ai-dynamo-runtime==1.6.1
pip_install -r requirements/dynamo-1.6.1.txt
# Dynamo 0.5.1 in its own venv: its argument parsers check what the 0.x (2025) profile writes.
if [ ! -x .cache/dynamo-0.5.1/bin/python ]; then
  "$PYTHON" -m venv .cache/dynamo-0.5.1
  .cache/dynamo-0.5.1/bin/python -m pip install --quiet --disable-pip-version-check ai-dynamo==0.5.1
fi
# AIConfigurator 0.12.0 in its own venv: `dyncc init --from-sla`, `dyncc estimate` and the timed twin run it
# in a subprocess (its dependencies never meet Dynamo's).
if [ ! -x .cache/aiconfigurator/bin/python ]; then
  "$PYTHON" -m venv .cache/aiconfigurator
  .cache/aiconfigurator/bin/python -m pip install --quiet --disable-pip-version-check aiconfigurator==0.12.0
fi
# Mermaid's parser (npm, pinned by the lockfile) for the graph tests.
if command -v npm >/dev/null 2>&1; then
  npm ci --silent --no-audit --no-fund --prefix tools/mermaid-check
fi
"$PYTHON" -c "import dyncc, dynamo.frontend, dynamo.mocker; print('dyncc and Dynamo 1.6.1 installed')"
