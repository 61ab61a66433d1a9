"""Planning the paper preset (`snakemake -n`) and the recorded wall time of the default study."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.common import Entry

ROOT = Path(__file__).resolve().parents[1]


def dry_run(configfile, workdir):
    """Seconds and planned jobs of `snakemake -n` for a preset, in a scratch directory (nothing of the
    project's results is read or written)."""
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [
        str(snakemake),
        "-n",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(ROOT / configfile),
        "--config",
        f"results_dir={workdir}/results",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    jobs = re.search(r"^total\s+(\d+)", done.stdout + done.stderr, re.M)
    return seconds, int(jobs.group(1)) if jobs else None


def study_minutes(configfile="config.yaml"):
    """The default study's wall time as `make study` recorded it, or None if it has not run here."""
    config = yaml.safe_load((ROOT / configfile).read_text())
    path = ROOT / config.get("results_dir", "results") / config["study"] / "study_time.json"
    if not path.exists():
        return None, f"{path.relative_to(ROOT)} not found: run `make study` first"
    record = json.loads(path.read_text())
    return record["seconds"] / 60, f"`make study` on {record['cores']} cores, from {path.relative_to(ROOT)}"


def run(tmp):
    seconds, jobs = dry_run("config/paper.yaml", Path(tmp) / "dryrun")
    minutes, where = study_minutes()
    return [
        Entry("dryrun_paper_s", seconds, "s", None, "<= 10", f"`snakemake -n` of config/paper.yaml: {jobs} jobs"),
        Entry("study_minutes", minutes, "min", None, "<= 45", where),
    ]
