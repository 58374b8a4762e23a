#!/usr/bin/env bash
# Stops what ci/slurm-up.sh started (nothing if it found a SLURM already running) and forgets
# its jobs: job ids restart at 1 the next time.
set -uo pipefail
marker=/run/robust-ssl-slurm-up
[ -e "$marker" ] || { echo "slurm-down: slurm-up.sh started nothing here"; exit 0; }
squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null
for daemon in slurmd slurmctld munged; do pkill -x "$daemon"; done
for _ in $(seq 50); do pgrep -x slurmd || pgrep -x slurmctld || pgrep -x munged || break; sleep 0.1; done >/dev/null
rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* "$marker"
echo "slurm-down: stopped"
