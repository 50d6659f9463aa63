#!/usr/bin/env bash
# A private, real Slurm (Debian's slurm-wlm) on this one machine, for dyncc's tests: its own munged,
# slurmctld and NODES fake slurmd nodes (multiple-slurmd mode), each claiming GPUS fake GPUs (gres files that
# are symlinks to /dev/null, so jobs get CUDA_VISIBLE_DEVICES), plus a SPANK stub accepting pyxis's options
# and recording container imports per node (pyxis_stub.c; DIR/pyxis/<job>.log).
#
#   test-cluster.sh start DIR [OWNER_PID] | stop DIR | status DIR
#   export SLURM_CONF=DIR/etc/slurm.conf    # then sbatch, squeue, srun, ... talk to this cluster only
#
# Everything lives under DIR (an empty directory; its ancestors must be searchable by all, as munged
# requires for its socket, so /tmp/x but not a 0700 pytest tmp dir): config, munge key and socket, state,
# spool, logs. Ports are free ones chosen at start. Several clusters can run side by side, and beside a
# site's own Slurm: nothing under /etc, /run or /var is read or written, and `stop` ends only the daemons
# this script started (by the PIDs it recorded, each checked to carry DIR's marker in its environment)
# and the jobs of this cluster. With OWNER_PID, a watchdog stops the cluster once that process is gone
# (a test run that was killed leaves no daemon behind).
# Needs root (slurmd starts jobs as their users); the packages come from scripts/setup.sh.
set -euo pipefail
NODES="${DYNCC_SLURM_NODES:-10}"
GPUS="${DYNCC_SLURM_GPUS:-8}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
HOST="$(hostname -s)"

usage() {
  echo "usage: $0 start DIR [OWNER_PID] | stop DIR | status DIR" >&2
  exit 2
}

[ $# -ge 2 ] || usage
ACTION=$1
DIR="$(realpath -m -- "$2")"
OWNER="${3:-}"
CONF="$DIR/etc/slurm.conf"
SOCKET="$DIR/munge/munge.socket"
# Only daemons started by this script carry this exact variable (and the slurmstepd processes they fork).
MARKER="DYNCC_SLURM_DAEMON=$DIR"
export SLURM_CONF="$CONF"

# --- processes: ours by recorded PID and environment marker, never by name -------------------------

running() { # PID: alive, and not a zombie waiting for a parent to reap it
  [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

has_marker() { # PID: does it carry this cluster's daemon marker?
  grep -qzxF "$MARKER" "/proc/$1/environ" 2>/dev/null
}

marked_processes() { # every live process carrying the marker (daemons, and the slurmstepd they forked)
  grep -lzxF "$MARKER" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | grep -vx "$$" || true
}

job_processes() { # processes of this cluster's jobs (a job's environment names its SLURM_CONF and job id)
  local pid
  grep -lzxF "SLURM_CONF=$CONF" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | while read -r pid; do
    [ "$pid" != "$$" ] && grep -qz '^SLURM_JOB_ID=' "/proc/$pid/environ" 2>/dev/null && echo "$pid"
  done
  return 0
}

recorded() { # PIDs this script recorded for NAME-glob, still alive and still ours
  local file pid
  for file in "$DIR"/pids/$1; do
    [ -f "$file" ] || continue
    pid="$(cat "$file")"
    if has_marker "$pid"; then echo "$pid"; fi
  done
}

end_processes() { # PID...: SIGTERM, up to 10 s, then SIGKILL
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 1 40); do
    local alive=0 pid
    for pid in "$@"; do running "$pid" && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.25
  done
  kill -KILL "$@" 2>/dev/null || true
}

launch() { # NAME COMMAND...: a daemon in the foreground of its own session, logging under DIR
  local name=$1
  shift
  # Not a process-group leader (no job control here), so setsid execs in place and $! is the daemon.
  env "$MARKER" setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo "$!" >"$DIR/pids/$name"
}

# --- start ------------------------------------------------------------------------------------------

free_ports() { # COUNT: a base port with COUNT free ports after it (below the 20000-32767 the tests draw from)
  python3 - "$1" <<'PY'
import random, socket, sys
count = int(sys.argv[1])
for _ in range(500):
    base = random.randrange(10000, 20000 - count)
    try:
        for port in range(base, base + count):
            with socket.socket() as s:
                s.bind(("0.0.0.0", port))
    except OSError:
        continue
    print(base)
    break
else:
    sys.exit("no block of free ports")
PY
}

write_config() {
  local base=$1
  local ctld_port=$base first=$((base + 1)) last=$((base + NODES))
  for i in $(seq 0 $((GPUS - 1))); do ln -sf /dev/null "$DIR/fakegpu/nvidia$i"; done
  cat >"$CONF" <<CONF
ClusterName=dyncc-test
SlurmctldHost=$HOST
SlurmctldPort=$ctld_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
MailProg=/bin/true
PlugStackConfig=$DIR/etc/plugstack.conf
StateSaveLocation=$DIR/state/ctld
SlurmdSpoolDir=$DIR/state/slurmd-%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
JobCompType=jobcomp/none
KillWait=5
InactiveLimit=0
MinJobAge=600
NodeName=node[1-$NODES] NodeHostname=$HOST NodeAddr=127.0.0.1 Port=[$first-$last] CPUs=8 RealMemory=64000 Gres=gpu:$GPUS Features=ib,nvlink State=UNKNOWN
PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  # gres.conf is read from slurm.conf's directory.
  echo "AutoDetect=off" >"$DIR/etc/gres.conf"
  echo "NodeName=node[1-$NODES] Name=gpu File=$DIR/fakegpu/nvidia[0-$((GPUS - 1))]" >>"$DIR/etc/gres.conf"
  gcc -shared -fPIC -o "$DIR/lib/pyxis_stub.so" "$HERE/pyxis_stub.c"
  echo "required $DIR/lib/pyxis_stub.so records=$DIR/pyxis" >"$DIR/etc/plugstack.conf"
}

start_munge() {
  dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$DIR/munge/munge.key"
  launch munged munged --foreground --socket="$SOCKET" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/state/munged.seed"
  for _ in $(seq 1 40); do
    [ -S "$SOCKET" ] && return 0
    sleep 0.25
  done
  echo "munged did not start:" >&2
  cat "$DIR/log/munged.out" >&2 || true
  return 1
}

up() {
  [ "$(sinfo -h -N 2>/dev/null | wc -l)" -eq "$NODES" ] && [ "$(sinfo -h -o '%T' 2>/dev/null | sort -u)" = "idle" ]
}

start() {
  if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
    echo "$DIR is not empty: a cluster is started in a new or empty directory" >&2
    return 1
  fi
  if [ "${#SOCKET}" -ge 100 ]; then
    echo "$DIR is too long a path for munged's socket ($SOCKET, over 100 characters)" >&2
    return 1
  fi
  mkdir -p "$DIR"/{etc,munge,state/ctld,run,log,pids,lib,pyxis,fakegpu}
  chmod 0755 "$DIR" "$DIR/munge"
  write_config "$(free_ports $((NODES + 1)))"
  start_munge
  launch slurmctld slurmctld -D -c -i -f "$CONF"
  for i in $(seq 1 "$NODES"); do launch "slurmd-node$i" slurmd -D -N "node$i" -f "$CONF"; done
  if [ -n "$OWNER" ]; then
    env "DYNCC_SLURM_WATCHDOG=$DIR" setsid bash "$SELF" watch "$DIR" "$OWNER" </dev/null >>"$DIR/log/watchdog.out" 2>&1 &
    echo "$!" >"$DIR/watchdog.pid"
  fi
  for _ in $(seq 1 120); do
    if up; then
      echo "slurm test cluster up: $NODES nodes x $GPUS GPUs; export SLURM_CONF=$CONF"
      return 0
    fi
    sleep 0.5
  done
  echo "slurm test cluster did not come up" >&2
  sinfo -N >&2 || true
  tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/"*.out >&2 || true
  stop >/dev/null 2>&1 || true
  return 1
}

# --- stop -------------------------------------------------------------------------------------------

stop() {
  [ -f "$CONF" ] || { echo "no test cluster in $DIR" >&2; return 0; }
  if [ -n "$(recorded slurmctld)" ]; then
    # Cancel this cluster's jobs and let its slurmd end their steps (SIGTERM, KillWait, SIGKILL), bounded:
    # a controller that stopped answering must not hold the stop up.
    local jobs
    jobs="$(timeout 5 squeue -h -o %A 2>/dev/null || true)"
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086  # one argument per job id
      timeout 5 scancel $jobs 2>/dev/null || true
      for _ in $(seq 1 60); do
        [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null)" ] && break
        sleep 0.25
      done
    fi
  fi
  # shellcheck disable=SC2046  # one argument per PID
  end_processes $(recorded 'slurmd-node*') $(recorded slurmctld)
  # What the daemons forked (slurmstepd, slurmscriptd) and any job process that outlived its step.
  # shellcheck disable=SC2046
  end_processes $(marked_processes | grep -vxF -f <(recorded munged) || true) $(job_processes)
  # shellcheck disable=SC2046
  end_processes $(recorded munged)
  if [ -f "$DIR/watchdog.pid" ]; then
    local watchdog
    watchdog="$(cat "$DIR/watchdog.pid")"
    if [ "$watchdog" != "$$" ] && grep -qzxF "DYNCC_SLURM_WATCHDOG=$DIR" "/proc/$watchdog/environ" 2>/dev/null; then
      kill "$watchdog" 2>/dev/null || true
    fi
    rm -f "$DIR/watchdog.pid"
  fi
  rm -f "$DIR"/pids/*
  echo "slurm test cluster in $DIR stopped"
}

watch() { # stop the cluster once OWNER is gone (or the cluster was stopped)
  while [ -f "$DIR/watchdog.pid" ] && running "$OWNER"; do sleep 2; done
  if [ -f "$DIR/watchdog.pid" ]; then stop; fi
}

status() {
  [ -n "$(recorded slurmctld)" ] && up && sinfo -N
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  watch) watch ;;
  *) usage ;;
esac
