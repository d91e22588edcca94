#!/usr/bin/env bash
# Stop exactly the daemons tools/local-slurm/start.sh started (by their recorded PIDs), in reverse
# order, waiting until each is gone. Idempotent: with nothing running it says so and exits 0.
set -euo pipefail

STATE=${EENET_SLURM_STATE:-/var/tmp/eenet-slurm}
say() { echo "local-slurm: $*" >&2; }

stopped=0
for d in slurmd slurmctld slurmdbd mariadb munged; do
  pidfile="$STATE/$d.pid"
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$d ($pid) ignored SIGTERM for 30s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    stopped=$((stopped + 1))
  fi
  rm -f "$pidfile"
done
say "stopped $stopped daemon(s)"
