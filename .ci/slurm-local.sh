#!/usr/bin/env bash
# A real single-node SLURM for the job-array test (tests/test_slurm.py), as root.
# Installs Debian's slurm-wlm and munge when missing, writes a one-node config,
# starts munged, slurmctld and slurmd, and waits for the node to be idle.
#   .ci/slurm-local.sh start | stop
set -euo pipefail
state=/tmp/neurolearn-slurm
action=${1:-start}

if [ "$action" = stop ]; then
    for daemon in slurmd slurmctld munged; do
        if [ -f "$state/$daemon.pid" ]; then kill "$(cat "$state/$daemon.pid")" 2>/dev/null || true; fi
    done
    exit 0
fi
[ "$action" = start ] || { echo "usage: $0 start|stop" >&2; exit 2; }

if sinfo -h -o %t 2>/dev/null | grep -qE 'idle|mix|alloc'; then
    echo "slurm-local: already running"; exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
node=$(hostname -s)
memory_mb=$(( $(free -m | awk '/^Mem:/{print $2}') * 8 / 10 ))
mkdir -p /etc/slurm "$state/ctld" "$state/spool" /run/munge /var/lib/munge /var/log/munge
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=neurolearn-ci
SlurmctldHost=$node
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmUser=root
ReturnToService=2
JobCompType=jobcomp/none
NodeName=$node CPUs=$(nproc) RealMemory=$memory_mb State=UNKNOWN
PartitionName=ci Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
/usr/sbin/munged --force --pid-file "$state/munged.pid" 2>/dev/null || /usr/sbin/munged --force
/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -q idle; then echo "slurm-local: ready"; exit 0; fi
    sleep 1
done
echo "slurm-local: the node did not become idle" >&2
exit 1
