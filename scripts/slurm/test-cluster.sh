#!/usr/bin/env bash
# A real Slurm (Debian's slurm-wlm) on this one machine, for dyncc's tests: munge, slurmctld and
# NODES fake slurmd nodes (multiple-slurmd mode), each claiming GPUS fake GPUs (gres files that are
# symlinks to /dev/null, so jobs get CUDA_VISIBLE_DEVICES), plus a SPANK stub accepting pyxis's options and
# recording container imports per node (pyxis_stub.c; /var/lib/dyncc-slurm/pyxis/<job>.log).
#   test-cluster.sh start | stop | status
# Needs root; the packages come from scripts/setup.sh.
set -euo pipefail
NODES="${DYNCC_SLURM_NODES:-10}"
GPUS="${DYNCC_SLURM_GPUS:-8}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF=/etc/slurm
STATE=/var/lib/dyncc-slurm
HOST="$(hostname -s)"

write_config() {
  mkdir -p "$CONF" "$STATE/ctld" "$STATE/fakegpu" /var/log/slurm /run/slurm
  for i in $(seq 0 $((GPUS - 1))); do ln -sf /dev/null "$STATE/fakegpu/nvidia$i"; done
  cat >"$CONF/slurm.conf" <<CONF
ClusterName=dyncc-test
SlurmctldHost=$HOST
SlurmctldPort=16817
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd-%n
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
JobCompType=jobcomp/none
KillWait=5
InactiveLimit=0
MinJobAge=600
NodeName=node[1-$NODES] NodeHostname=$HOST NodeAddr=127.0.0.1 Port=[17001-$((17000 + NODES))] CPUs=8 RealMemory=64000 Gres=gpu:$GPUS Features=ib,nvlink State=UNKNOWN
PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  echo "AutoDetect=off" >"$CONF/gres.conf"
  echo "NodeName=node[1-$NODES] Name=gpu File=$STATE/fakegpu/nvidia[0-$((GPUS - 1))]" >>"$CONF/gres.conf"
  echo "cgroup.conf is unused (proctrack/linuxproc)" >/dev/null
}

build_stub() {
  local so=/usr/lib/x86_64-linux-gnu/slurm-wlm/pyxis_stub.so
  [ -d "$(dirname "$so")" ] || so="$STATE/pyxis_stub.so"
  gcc -shared -fPIC -o "$so" "$HERE/pyxis_stub.c"
  echo "required $so" >"$CONF/plugstack.conf"
}

start_munge() {
  if pgrep -x munged >/dev/null; then return; fi
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged
}

start() {
  # Always a clean cluster: a machine that ran the suite before keeps jobs in the saved state, and a
  # recovered job whose processes died with the old daemons leaves its node "alloc" for minutes.
  stop >/dev/null 2>&1 || true
  rm -rf "$STATE/ctld" "$STATE"/slurmd-node* "$STATE/pyxis"
  write_config
  build_stub
  start_munge
  slurmctld -c -i
  for i in $(seq 1 "$NODES"); do slurmd -N "node$i"; done
  for _ in $(seq 1 60); do
    if [ "$(sinfo -h -o '%T' | sort -u)" = "idle" ] && [ "$(sinfo -h -N | wc -l)" -eq "$NODES" ]; then
      echo "slurm test cluster up: $NODES nodes x $GPUS GPUs"
      return
    fi
    sleep 0.5
  done
  echo "slurm test cluster did not come up" >&2
  sinfo -N >&2 || true
  tail -n 20 /var/log/slurm/slurmctld.log >&2 || true
  return 1
}

stop() {
  # Bounded: a controller that died leaves its slurmscriptd child, and scancel would wait on it.
  if pgrep -x slurmctld >/dev/null; then timeout 5 scancel --full --quiet --user=root 2>/dev/null || true; fi
  pkill -x slurmstepd || true
  pkill -x slurmd || true
  pkill -x slurmctld || true
  for _ in $(seq 1 40); do
    pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || return 0
    sleep 0.25
  done
  pkill -9 -x slurmd || true
  pkill -9 -x slurmctld || true
}

status() {
  pgrep -x slurmctld >/dev/null && [ "$(sinfo -h -N 2>/dev/null | wc -l)" -eq "$NODES" ] && sinfo -h -o '%T' | grep -qv down
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status && sinfo -N ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
