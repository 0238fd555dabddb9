#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost, from Debian packages, for the cluster test
# (tests/test_slurm.py) and for trying profiles/slurm on a workstation. Needs root.
#
#   scripts/slurm_local.sh install   apt-get install munge, slurmctld, slurmd, slurm-client (idempotent)
#   scripts/slurm_local.sh start     write /etc/slurm/{slurm,gres}.conf for this host, start munged,
#                                    slurmctld and slurmd, wait until the node is idle
#   scripts/slurm_local.sh stop      stop the daemons this script started (by their PID files)
#   scripts/slurm_local.sh status    one line: running or not, node state, partition
#
# No cgroups (proctrack/linuxproc, task/none) and no slurmdbd: job states come from squeue
# (the profile's `slurm-status-command: squeue`), and every finished job is written by the
# controller to a job-completion file ($SLURM_LOCAL_DIR/log/jobcomp.txt) that the test reads.
# Two partitions, cpu (default) and gpu, as profiles/slurm names them, share the one node.
# One fake GPU (gres File=/dev/null) lets `sbatch --gpus=1` through; nothing is assigned.
# The config must live in /etc/slurm: the job-step plugin drops SLURM_CONF before its srun.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/var/tmp/spectrovision-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by spectrovision scripts/slurm_local.sh"
PACKAGES=(munge slurmctld slurmd slurm-client)

die() { echo "slurm_local: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons); try: sudo $0 $1"; }
pid_alive() { local pid; pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
node_state() { sinfo -h -N -o %T 2>/dev/null | head -n1 || true; }

install() {
  need_root install
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then echo "slurm_local: already installed (${PACKAGES[*]})"; return; fi
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} with this system's package manager"
  export DEBIAN_FRONTEND=noninteractive
  local log; log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2; rm -f "$log"; die "apt-get install ${missing[*]} failed (output above)"
  fi
  rm -f "$log"
  echo "slurm_local: installed ${missing[*]} (slurm $(dpkg-query -W -f='${Version}' slurmctld))"
}

write_config() {
  local host ncpu mem_mb
  host=$(hostname -s)
  ncpu=$(nproc)
  # RealMemory must not exceed what slurmd measures; leave 1 GiB for the system
  mem_mb=$(( $(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo) - 1024 ))
  [ "$mem_mb" -gt 512 ] || mem_mb=512
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; refusing to overwrite a real cluster's config"
  fi
  mkdir -p "$DIR"/{state,spool,log} /etc/slurm
  cat > "$CONF" <<EOF
$MARK
ClusterName=spectrovision
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=300
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$ncpu RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
# the partitions profiles/slurm names: cpu (default) and gpu, both on this one node
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
EOF
  # a GPU gres without File= is dropped by slurmd and the node drains
  echo "NodeName=$host Name=gpu File=/dev/null" > /etc/slurm/gres.conf
}

start_munge() {
  mkdir -p /run/munge && chown munge:munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create >/dev/null && chown munge:munge /etc/munge/munge.key
  fi
  pid_alive /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
  munge -n | unmunge >/dev/null || die "munge does not work; see /var/log/munge/munged.log"
}

start() {
  need_root start
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
    || die "SLURM is not installed; run: $0 install"
  if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid" && [ "$(node_state)" = idle ]; then
    echo "slurm_local: already running, node idle, partitions cpu gpu ($DIR)"; return
  fi
  stop >/dev/null
  write_config
  start_munge
  : > "$DIR/log/jobcomp.txt"
  slurmctld -c    # -c: clean state, no jobs left over from an earlier start
  slurmd
  local state=""
  for _ in $(seq 1 120); do
    state=$(node_state)
    [ "$state" = idle ] && break
    sleep 0.5
  done
  [ "$state" = idle ] || die "node not idle after 60 s (state '${state:-none}'); see $DIR/log/slurmctld.log and slurmd.log"
  echo "slurm_local: started, node $(hostname -s) idle, partitions cpu gpu, $(nproc) CPUs, 1 fake GPU ($DIR)"
}

stop() {
  need_root stop
  local f pid stopped=()
  for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
    pid=$(cat "$f" 2>/dev/null) || continue
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      stopped+=("$(basename "$f" .pid)")
    fi
    rm -f "$f"
  done
  # munged is left running: other software on the host may use it
  echo "slurm_local: stopped ${stopped[*]:-nothing (not running)}"
}

status() {
  if ! command -v sinfo >/dev/null; then echo "slurm_local: not installed"; return 1; fi
  if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid"; then
    echo "slurm_local: running, node $(node_state), partitions cpu gpu ($DIR)"
  else
    echo "slurm_local: not running"; return 1
  fi
}

case "${1:-}" in
  install|start|stop|status) "$1" ;;
  *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
