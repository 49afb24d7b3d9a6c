#!/usr/bin/env bash
# A real single-node SLURM for the job-array test (tests/test_slurm.py), as root.
# Installs Debian's slurm-wlm and munge when missing, writes a one-node config,
# starts munged, slurmctld and slurmd, and waits for the node to be idle.
#   .ci/slurm-local.sh start | stop   (stop ends the daemons start began, by their pid files)
set -euo pipefail
state=/tmp/neurolearn-slurm
action=${1:-start}

if [ "$action" = stop ]; then
    # stop the daemons start recorded, each by its pid, and wait until it is gone
    for daemon in slurmd slurmctld munged; do
        pidfile=$state/$daemon.pid
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then echo "slurm-local: $daemon ($pid) did not stop" >&2; exit 1; fi
        rm -f "$pidfile"
    done
    echo "slurm-local: stopped"
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
if ! /usr/sbin/munged --force --pid-file "$state/munged.pid" 2>/dev/null; then
    /usr/sbin/munged --force  # an older munged without --pid-file: it records its pid in the default place
    sleep 1
    cp /run/munge/munged.pid "$state/munged.pid"
fi
/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -q idle; then echo "slurm-local: ready"; exit 0; fi
    sleep 1
done
echo "slurm-local: the node did not become idle" >&2
exit 1
