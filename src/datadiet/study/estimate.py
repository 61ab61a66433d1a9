"""`datadiet estimate`: jobs, runs and GPU-hours per experiment of a config, before anyone launches it.

The run list is Snakemake's own (its --summary table of the whole DAG), so it cannot drift from the
workflow; each run is read from its outputs through the study's layout, and a job may make several
(layout.RUN_FIELD). The cost of a run is its training images (or scored examples) over the throughput
assumed in the config's `estimate` section.
"""

import functools
import io
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from ..registry import AT_CHECKPOINT
from . import config as study_config, layout
from .config import ROOT
from .names import Method, Score

CLASSES = {"cifar10": 10, "cifar100": 100, "cinic10": 10}


@dataclass(frozen=True)
class Job:
    """One run of a job of the DAG (a job that makes several runs is listed once a run)."""

    rule: str
    kind: str  # which of layout.JOB_OUTPUTS names it
    wildcards: dict

    @property
    def job(self):
        """The Snakemake job that makes this run: its rule, and its wildcards bar the run's own."""
        own = layout.RUN_FIELD.get(self.kind)
        return self.rule, tuple(sorted((k, v) for k, v in self.wildcards.items() if k != own))


@functools.cache  # the rule files, read once: callers ask for every run of a plan
def local_rules():
    """The rules the main Snakemake process runs itself (`localrule: True`), never submitted to Slurm."""
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    text = "\n".join(file.read_text() for file in files)
    return set(re.findall(r"^rule (\w+):\n(?:    .*\n)*?    localrule: True$", text, re.M))


def submitted(runs):
    """The jobs of `runs` that a Slurm study submits (the local rules' run in the main process)."""
    return {run.job for run in runs if run.rule not in local_rules()}


def planned_jobs(configfile, extra=()):
    """Every run of every job of the DAG, done or not; `extra`: more config files, merged over the first in
    order (as snakemake's --configfile takes them)."""
    cmd = [sys.executable, "-m", "snakemake", "--summary", "--forceall", "--configfile", str(configfile), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake --summary failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    table = pd.read_csv(io.StringIO(proc.stdout), sep="\t", dtype=str)
    found = [(rule, *kind_of(path)) for rule, path in zip(table.rule, table.output_file)]
    found = [job for job in found if job[2] is not None]
    # A job's outputs are listed one a row; the one earliest in layout.JOB_OUTPUTS names the job's runs.
    naming = {rule: min(order for r, order, _, _ in found if r == rule) for rule, *_ in found}
    return [
        Job(rule, kind, wildcards)
        for rule, order, kind, wildcards in found
        if order == naming[rule] or is_score_run(kind, wildcards)
    ]


def is_score_run(kind, wildcards):
    """A GraNd or EL2N score is a run of its own, whichever job makes it (a size-sweep scoring job makes
    one after its training run); forgetting and AUM are made inside their training run."""
    return kind == "score" and Score.parse(wildcards["score"]).epoch is not None


def kind_of(path):
    """(order, kind, wildcards) of the first template of layout.JOB_OUTPUTS `path` is made from."""
    for order, (kind, template) in enumerate(layout.JOB_OUTPUTS.items()):
        try:
            return order, kind, layout.parse(template, path)
        except ValueError:
            continue
    return None, None, None


def experiment_of(job, study):
    """Which experiment of the paper a job serves (shared scoring runs count as 'scores')."""
    w, config = job.wildcards, study.config
    if w.get("dataset") in study.subsets and job.kind in ("retrain", "scoring", "score", "mean"):
        return "size sweep"
    if job.kind == "retrain":
        if Method.parse(w["method"]).source_arch or w["arch"] != study.arch_of(w["dataset"]):
            return "architecture transfer"
        if float(w["noise"]) > 0:
            return "label noise"
        if w["method"] not in config["pruning"]["methods"] + ["full"]:
            return "size sweep" if Method.parse(w["method"]).kind == "easy" else "how early"
        return "pruning curve"
    return {
        "scoring": "scores",
        "score": "scores",
        "mean": "scores",
        "window": "sliding window",
        "ntk": "NTK velocity",
        "child": "linear mode connectivity",
        "barrier": "linear mode connectivity",
    }.get(job.kind, "set-up and report")


def images_processed(job, study):
    """Images one job trains on or scores (a GraNd example costs about two training images)."""
    w, config = job.wildcards, study.config
    epochs, spec = config["train"]["epochs"], study.spec_of(w["dataset"])
    n = study.train_size(w["dataset"])
    batch = spec.get("batch_size") or config["train"]["batch_size"]
    trained = epochs * (n // batch) * batch  # step budget: every run trains as many steps as full data
    if job.kind == "scoring" and w["dataset"] in study.subsets:  # cut at the sweep score's epoch
        return trained * Score.parse(study.sweep["score"]).epoch / epochs
    if job.kind == "scoring" and study.short_scoring:  # cut at its last checkpoint
        return trained * max(study.checkpoint_epochs) / epochs
    if job.kind == "retrain" and config["train"]["budget"] == "epochs":  # as many epochs of the subset
        return epochs * (int(n * float(w["keep"])) // batch) * batch
    if job.kind in ("scoring", "retrain", "window"):
        return trained
    if job.kind == "child":
        return trained * (1 - int(w["epoch"]) / epochs)
    if is_score_run(job.kind, w):
        return n * AT_CHECKPOINT[Score.parse(w["score"]).kind].cost
    if job.kind == "ntk":
        ntk = config["experiments"]["ntk"]
        blocks = ntk["blocks"] or n // ntk["block_size"]
        classes = spec.get("num_classes") or CLASSES.get(spec.get("name", w["dataset"]), 10)
        return 2 * blocks * ntk["block_size"] * classes  # one backward per logit, at two checkpoints
    return 0


def gpu_hours(job, study):
    """Images processed by one job over the assumed throughput, in hours."""
    if "arch" not in job.wildcards:
        return 0.0
    rates, arch = study.config["estimate"]["images_per_second"], job.wildcards["arch"]
    if arch not in rates:
        raise study_config.ConfigError(f"config estimate.images_per_second has no rate for {arch!r}: {rates}")
    return images_processed(job, study) / rates[arch] / 3600


def summarize(runs, config):
    """{experiment: [jobs, runs, GPU-hours]}."""
    study, jobs, table = study_config.Study(config), defaultdict(set), defaultdict(lambda: [0, 0, 0.0])
    for run in runs:
        experiment = experiment_of(run, study)
        jobs[experiment].add(run.job)
        table[experiment][1] += 1
        table[experiment][2] += gpu_hours(run, study)
    return {experiment: [len(jobs[experiment]), *row[1:]] for experiment, row in table.items()}


def main(configfile, extra=()):
    config = study_config.load(configfile, *extra).config
    table = summarize(planned_jobs(configfile, extra), config)
    est = config["estimate"]
    print(
        f"{configfile}: jobs and GPU-hours per experiment, at "
        f"{', '.join(f'{a} {r:g} img/s' for a, r in est['images_per_second'].items())} on one {est['gpu']}"
    )
    print(f"{'experiment':<26}{'jobs':>8}{'runs':>8}{'GPU-hours':>12}")
    for name, (jobs, runs, hours) in sorted(table.items(), key=lambda kv: -kv[1][2]):
        print(f"{name:<26}{jobs:>8}{runs:>8}{hours:>12.1f}")
    total = [sum(row[i] for row in table.values()) for i in range(3)]
    print(f"{'total':<26}{total[0]:>8}{total[1]:>8}{total[2]:>12.1f}")
    return table
