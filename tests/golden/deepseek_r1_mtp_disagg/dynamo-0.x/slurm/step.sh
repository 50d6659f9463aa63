#!/usr/bin/env bash
# One rank of a dyncc Slurm step: record where it runs, then become the command (argv, never eval'd).
set -euo pipefail
if [ "${SLURM_PROCID:-0}" = "0" ] && [ -n "${DYNCC_HOSTS_DIR:-}" ] && [ -n "${DYNCC_STEP:-}" ]; then
  hostname >"$DYNCC_HOSTS_DIR/$DYNCC_STEP"
fi
echo "dyncc-step: ${DYNCC_STEP:-?} on $(hostname) node=${SLURMD_NODENAME:-?} rank=${SLURM_PROCID:-0} CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-}"
exec "$@"
