#!/usr/bin/env bash
# Install (apt-get) and start a one-node SLURM with accounting on this machine, for tests of the
# workflow's SLURM profile. Idempotent: when the cluster it started is up, it says so and exits 0.
#
#   tools/local-slurm/start.sh          # -> cluster "eenet", partition "debug", account "ci" (user root)
#   tools/local-slurm/stop.sh           # stops exactly the daemons this script started
#
# Needs root and apt-get (Debian 12: Slurm 22.05, munge, MariaDB). Daemons listen on 127.0.0.1 only
# (MariaDB on its unix socket); their state, logs and PID files live in $EENET_SLURM_STATE.
set -euo pipefail

STATE=${EENET_SLURM_STATE:-/var/tmp/eenet-slurm}
MARKER="# written by eenet-pipeline tools/local-slurm/start.sh"
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
DB_PASS=eenet-local-slurm
T0=$(date +%s%N)

say() { echo "local-slurm: $*" >&2; }
die() { say "$*"; exit 1; }
alive() { [[ -f "$STATE/$1.pid" ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for ((i = 0; i < limit * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not come up within ${limit}s; see the logs in $STATE"
}

[[ $(id -u) == 0 ]] || die "needs root (it installs packages and starts system daemons)"

if alive slurmctld && alive slurmd && alive slurmdbd && sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
  say "already running (state in $STATE)"; exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  command -v apt-get >/dev/null || die "slurm is not installed and apt-get is not available"
  say "installing munge, slurm and mariadb with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client slurmdbd mariadb-server >/dev/null
fi

for f in "$CONF" "$DBD_CONF"; do
  if [[ -f $f ]] && ! grep -qF "$MARKER" "$f"; then
    die "$f exists and was not written by this script: refusing to replace a real cluster's configuration"
  fi
done

mkdir -p "$STATE"/{ctld,d,log} /run/munge /run/mysqld /etc/slurm
chown slurm:slurm "$STATE" "$STATE"/ctld "$STATE"/log

# --- munge ------------------------------------------------------------------------------------------
if ! alive munged; then
  [[ -s /etc/munge/munge.key ]] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
  chown munge:munge /etc/munge/munge.key /run/munge; chmod 400 /etc/munge/munge.key
  runuser -u munge -- munged --force --pid-file=/run/munge/munged.pid
  wait_for 10 munged test -s /run/munge/munged.pid
  cp /run/munge/munged.pid "$STATE/munged.pid"
fi

# --- MariaDB on its unix socket only, and the slurm database user -------------------------------------
if ! alive mariadb; then
  if [[ ! -d /var/lib/mysql/mysql ]]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE/log/mariadb-install.log" 2>&1
  fi
  chown mysql:mysql /run/mysqld
  setsid mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
    </dev/null >"$STATE/log/mariadb.log" 2>&1 &
  echo $! >"$STATE/mariadb.pid"
  wait_for 30 MariaDB mariadb --socket=/run/mysqld/mysqld.sock -e "SELECT 1"
fi
mariadb --socket=/run/mysqld/mysqld.sock -e "
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

# --- configuration --------------------------------------------------------------------------------
HOST=$(hostname -s)
NODE=$(slurmd -C | head -1)                       # NodeName=... CPUs=... RealMemory=...
MEM=$(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$NODE")
NODE=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$((MEM * 9 / 10))/" <<<"$NODE")

cat >"$DBD_CONF" <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
EOF
chown slurm:slurm "$DBD_CONF"; chmod 600 "$DBD_CONF"

cgroups=0
if [[ -d /sys/fs/cgroup/cpuset || -f /sys/fs/cgroup/cgroup.controllers ]]; then cgroups=1; fi
cat >"$CONF" <<EOF
$MARKER
ClusterName=eenet
SlurmctldHost=$HOST
SlurmUser=slurm
AuthType=auth/munge
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
MpiDefault=none
$NODE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
echo "# cgroups available: $cgroups (proctrack/linuxproc used: works without a cgroup setup)" >>"$CONF"

# --- Slurm daemons (each detaches and writes its PID file) -----------------------------------------
alive slurmdbd || slurmdbd
wait_for 30 slurmdbd sacctmgr -n show cluster
sacctmgr -i add cluster eenet >/dev/null 2>&1 || true
alive slurmctld || slurmctld
wait_for 30 slurmctld scontrol ping
alive slurmd || slurmd
wait_for 60 "an idle node" bash -c "sinfo -h -o %T | grep -Eq '^(idle|mixed|allocated)'"
sacctmgr -i add account ci Description=eenet-ci Organization=eenet >/dev/null 2>&1 || true
sacctmgr -i add user root account=ci >/dev/null 2>&1 || true
wait_for 30 "the ci account" bash -c "sacctmgr -n -P show assoc where user=root account=ci format=account | grep -q ci"

ms=$((($(date +%s%N) - T0) / 1000000))
say "up in $((ms / 1000)).$((ms % 1000 / 100))s: cluster eenet, partition debug, account ci; $(sinfo -h -o '%N %c CPUs %m MB %T')"
