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

# With its controller gone, every SLURM client call retries for MessageTimeout (10 s by default) -- and
# Snakemake's SLURM executor plugin runs `scontrol show config` whenever snakemake starts, local runs and
# dry runs included. Let the configuration start.sh wrote fail at once instead; start.sh writes it anew.
CONF=/etc/slurm/slurm.conf
if [[ -f $CONF ]] && grep -q "tools/local-slurm/start.sh" "$CONF" && ! grep -q "^MessageTimeout=1$" "$CONF"; then
  printf '# no controller runs now (tools/local-slurm/stop.sh): clients fail at once\nMessageTimeout=1\n' >>"$CONF"
  say "set MessageTimeout=1 in $CONF: SLURM clients fail at once while no controller runs"
fi
