#!/usr/bin/env bash
# One rank of a dyncc Slurm step: record where it runs, load the site's environment, then become the
# command (argv, never eval'd).
set -euo pipefail
if [ "${SLURM_PROCID:-0}" = "0" ] && [ -n "${DYNCC_HOSTS_DIR:-}" ] && [ -n "${DYNCC_STEP:-}" ]; then
  hostname >"$DYNCC_HOSTS_DIR/$DYNCC_STEP"
fi
# slurm.env_files (KEY=value lines, exported) and slurm.setup_script, on every node of every step; site
# files are not written for `set -u`, so it is off while they run.
set +u
if [ -n "${DYNCC_ENV_FILES:-}" ]; then
  IFS=: read -r -a dyncc_env_files <<<"$DYNCC_ENV_FILES"
  for dyncc_env_file in "${dyncc_env_files[@]}"; do
    set -a
    # shellcheck disable=SC1090
    source "$dyncc_env_file"
    set +a
  done
fi
if [ -n "${DYNCC_SETUP_SCRIPT:-}" ]; then
  # shellcheck disable=SC1090
  source "$DYNCC_SETUP_SCRIPT"
fi
set -u
echo "dyncc-step: ${DYNCC_STEP:-?} on $(hostname) node=${SLURMD_NODENAME:-?} rank=${SLURM_PROCID:-0} CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-} cpus_per_task=${SLURM_CPUS_PER_TASK:-} at=$(date +%s.%N)"
# A pool's env values may hold {rank}: each rank gets its own (SLURM_PROCID), in the `env NAME=value` words
# before the command only; nothing else is rewritten.
if [ "${1:-}" = env ]; then
  dyncc_args=("$1")
  shift
  while [ $# -gt 0 ] && [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
    dyncc_args+=("${1//\{rank\}/${SLURM_PROCID:-0}}")
    shift
  done
  set -- "${dyncc_args[@]}" "$@"
fi
exec "$@"
