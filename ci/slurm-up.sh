#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the tests of the slurm executor
# (tests/test_slurm.py): installs slurm-wlm and munge when missing (Debian, as root), writes
# /etc/slurm/slurm.conf for this host and starts munged, slurmctld and slurmd. No accounting
# database: the executor reads job states from squeue and submitit's result files, as it must
# wherever `sacct` is not set up. Once installed, bring-up takes about a second.
# ci/slurm-down.sh stops it. Both are idempotent.
set -euo pipefail
marker=/run/robust-ssl-slurm-up  # what slurm-down.sh may stop

if sinfo -h >/dev/null 2>&1 && [ ! -e "$marker" ]; then
    echo "slurm-up: a SLURM controller already answers here; using it, changing nothing"
    exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "slurm-up: slurm-wlm is missing and installing it needs root" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq slurm-wlm munge >/dev/null; }
fi

host=$(hostname -s)
cpus=$(nproc)
# RealMemory above what slurmd measures would drain the node
memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
state=/var/spool/slurmctld

mkdir -p /etc/slurm "$state" /var/spool/slurmd /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<CONF
# written by robust-ssl's ci/slurm-up.sh: one node, no cgroups, no accounting
ClusterName=robust-ssl-ci
SlurmctldHost=$host
SlurmUser=slurm
StateSaveLocation=$state
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
# a cell whose parent failed is cancelled instead of pending forever
DependencyParameters=kill_invalid_depend
# finished jobs stay visible to squeue/scontrol for 10 minutes
MinJobAge=600
KillWait=5
# a node silent for 15 s is down and its jobs are requeued (the lost-node test); 300 by default
SlurmdTimeout=15
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
chown -R slurm:slurm "$state" /var/log/slurm
chown munge:munge /run/munge

touch "$marker"
pgrep -x munged >/dev/null || runuser -u munge -- munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

# ready when the node is idle and registered
for _ in $(seq 100); do
    node=$(scontrol show node "$host" 2>/dev/null || true)
    if grep -q "State=IDLE" <<<"$node" && grep -q "SlurmdStartTime=[0-9]" <<<"$node"; then
        echo "slurm-up: node $host idle ($cpus CPUs, ${memory} MB) in partition ci"
        exit 0
    fi
    sleep 0.2
done
echo "slurm-up: the node did not become idle; see /var/log/slurm/" >&2
scontrol show node "$host" >&2 || true
exit 1
