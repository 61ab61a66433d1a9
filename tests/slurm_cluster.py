"""A real single-node Slurm cluster for the tests, from Debian's slurm-wlm and munge.

slurm.conf goes to the default /etc/slurm/slurm.conf: the executor plugin's job steps drop SLURM_*
variables, SLURM_CONF included. There is no accounting daemon (so squeue is the status command:
SNAKEMAKE_OPTIONS); every finished job is written to a job-completion file instead. The node claims
more CPUs than the machine has (config_overrides), so that 8 and more one-thread jobs run at once.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
# What `snakemake --profile profiles/slurm` needs on a cluster without accounting, which the profile leaves
# to the plugin: job states from squeue (the plugin would pick sacct, installed here but with no database
# behind it), and the first status check after 10 s (the plugin's 40 s would slow the tests).
SNAKEMAKE_OPTIONS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "10"]


def tool(name):
    """The path of a Slurm or munge program: daemons live in /usr/sbin, which a user's PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def why_not():
    """Why this machine cannot run the test cluster, or None if it can."""
    missing = [name for name in ("slurmctld", "slurmd", "sbatch", "squeue", "munged") if not tool(name)]
    if missing:
        return f"{', '.join(missing)} not installed (`make system-deps` installs slurm-wlm and munge as root)"
    if os.geteuid() != 0:
        return "starting slurmctld, slurmd and munged needs root"
    return None


def munge_answers():
    return subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0


def node_state():
    return subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.strip()


def within(seconds, ready):
    """Whether ready() holds within `seconds` (asked every 0.2 s)."""
    deadline = time.time() + seconds
    while not ready():
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


def slurm_conf(state, host, cpus):
    return f"""# written by the datadiet tests (tests/slurm_cluster.py)
ClusterName=datadiet-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/d
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={state}/jobcomp.txt
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=64000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    def __init__(self, state, cpus=12):
        self.state, self.cpus = Path(state), cpus
        self.host = socket.gethostname().split(".")[0]
        self.processes = []

    @property
    def completed(self):
        """Finished jobs from the job-completion file: one dict of its fields per job."""
        path = self.state / "jobcomp.txt"
        if not path.exists():
            return []
        return [
            dict(field.split("=", 1) for field in line.split() if "=" in field)
            for line in path.read_text().splitlines()
        ]

    def start(self):
        for sub in ("ctld", "d"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        CONF.parent.mkdir(parents=True, exist_ok=True)
        if CONF.exists() and "datadiet tests" not in CONF.read_text():
            raise RuntimeError(f"{CONF} exists and is not ours: not touching a real cluster's configuration")
        CONF.write_text(slurm_conf(self.state, self.host, self.cpus))
        if not munge_answers():  # a munged already running (the machine's own) is left alone
            Path("/run/munge").mkdir(exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            self.processes.append(
                subprocess.Popen(
                    [tool("munged"), "-F"],
                    user="munge",
                    group="munge",
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                )
            )
            if not within(10, munge_answers):
                self.stop()
                raise RuntimeError("munged did not start")
        # Foreground daemons (-F, -D) are ours to stop; -i ignores state left by an earlier test run.
        self.processes.append(
            subprocess.Popen([tool("slurmctld"), "-D", "-i"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        )
        self.processes.append(
            subprocess.Popen([tool("slurmd"), "-D"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        )
        if within(60, lambda: node_state() in ("idle", "mixed", "allocated")):
            return self
        logs = "\n".join(
            (self.state / f).read_text()[-2000:] for f in ("slurmctld.log", "slurmd.log") if (self.state / f).exists()
        )
        self.stop()
        raise RuntimeError(f"the test cluster did not come up (sinfo: {node_state()!r}):\n{logs}")

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes = []
        # A slurm.conf naming a controller that is gone makes `scontrol show config`, which the executor
        # plugin runs whenever Snakemake loads it, wait 9 s: every later snakemake call here would pay it.
        if CONF.exists() and "datadiet tests" in CONF.read_text():
            CONF.unlink()
