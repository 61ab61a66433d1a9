"""Planning the paper preset (`snakemake -n`) and the recorded wall time of the default study."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.common import Entry
from datadiet.study.estimate import local_rules

ROOT = Path(__file__).resolve().parents[1]


def dry_run(configfile, workdir):
    """Seconds of `snakemake -n` for a preset, and the jobs it plans to submit (to Slurm, under --profile
    slurm) and to run locally, in a scratch directory (nothing of the project's results is read or written)."""
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [
        str(snakemake),
        "-n",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",  # config.yaml first: the Snakefile's own is read from the scratch directory
        str(ROOT / "config.yaml"),
        str(ROOT / configfile),
        "--config",
        f"results_dir={workdir}/results",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    planned = re.findall(r"^rule (\w+):", done.stdout + done.stderr, re.M)
    local = [rule for rule in planned if rule in local_rules()]
    return seconds, len(planned) - len(local), len(local)


def study_minutes(configfile="config.yaml"):
    """The default study's wall time as `make study` recorded it, or None if it has not run here."""
    config = yaml.safe_load((ROOT / configfile).read_text())
    path = ROOT / config.get("results_dir", "results") / config["study"] / "study_time.json"
    if not path.exists():
        return None, f"{path.relative_to(ROOT)} not found: run `make study` first"
    record = json.loads(path.read_text())
    return record["seconds"] / 60, f"`make study` on {record['cores']} cores, from {path.relative_to(ROOT)}"


def run(tmp):
    seconds, submitted, local = dry_run("config/paper.yaml", Path(tmp) / "dryrun")
    minutes, where = study_minutes()
    return [
        Entry("dryrun_paper_s", seconds, "s", None, "<= 10", "`snakemake -n` of config/paper.yaml"),
        Entry("paper_cluster_jobs", submitted, "jobs", None, "<= 1500", f"config/paper.yaml; {local} more run locally"),
        Entry("study_minutes", minutes, "min", None, "<= 45", where),
    ]
