"""`datadiet estimate`: jobs and GPU-hours per experiment of a config, before anyone launches it.

The job list is Snakemake's own (a forced dry run of the whole DAG), so it cannot drift from the
workflow; the cost of each job is its training images (or scored examples) over the throughput
assumed in the config's `estimate` section.
"""
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# Training-set sizes of the paper's datasets, for configs that read them whole.
KNOWN_SIZES = {"cifar10": 50_000, "cifar100": 50_000, "cinic10": 180_000}
CLASSES = {"cifar10": 10, "cifar100": 100, "cinic10": 10}


def dry_run_jobs(configfile, extra=()):
    """[(rule, wildcards dict)] of every job of the DAG, done or not; `extra`: more config files,
    merged over the first in order (as snakemake's --configfile takes them)."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--forceall", "--configfile", str(configfile), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake dry run failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    jobs, rule = [], None
    for line in proc.stdout.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            if rule is not None:
                jobs.append((rule, wildcards))
            rule, wildcards = match.group(1), {}
        elif rule is not None and (match := re.match(r"^\s+wildcards: (.*)$", line)):
            wildcards = dict(item.split("=", 1) for item in match.group(1).split(", "))
    if rule is not None:
        jobs.append((rule, wildcards))
    return jobs


def load_config(configfile, *more):
    """The config (more files merged over it, in order) with the schema's defaults filled in, as
    the workflow sees it."""
    from snakemake.utils import update_config, validate

    config = yaml.safe_load(Path(configfile).read_text())
    for path in more:
        update_config(config, yaml.safe_load(Path(path).read_text()))
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def train_size(name, spec):
    if spec.get("train_size"):
        return spec["train_size"]
    if spec.get("train_per_class") and spec.get("num_classes"):
        return spec["train_per_class"] * spec["num_classes"]
    return KNOWN_SIZES.get(spec.get("name", name), 50_000)


def experiment_of(rule, w, config):
    """Which experiment of the paper a job serves (shared scoring runs count as 'scores')."""
    if rule in ("train_scoring", "lmc_parent", "score", "aggregate_scores", "input_norm"):
        return "scores"
    if rule == "retrain":
        dataset = config["datasets"][w["dataset"]]
        if "-from-" in w["method"] or w["arch"] != dataset["arch"]:
            return "architecture transfer"
        if float(w["noise"]) > 0:
            return "label noise"
        if w["method"] not in config["pruning"]["methods"] + ["full"]:
            return "how early"
        return "pruning curve"
    return {"retrain_window": "sliding window", "ntk_velocity": "NTK velocity", "lmc_child": "linear mode connectivity",
            "lmc_barrier": "linear mode connectivity"}.get(rule, "set-up and report")


def gpu_hours(rule, w, config):
    """Images processed by one job over the assumed throughput, in hours."""
    if "dataset" not in w or "arch" not in w:
        return 0.0
    spec = config["datasets"][w["dataset"]]
    n = train_size(w["dataset"], spec)
    batch = spec.get("batch_size") or config["train"]["batch_size"]
    rate = config["estimate"]["images_per_second"][w["arch"]]
    epochs = config["train"]["epochs"]
    trained = epochs * (n // batch) * batch  # step budget: every run trains as many steps as full data
    if rule in ("train_scoring", "lmc_parent", "retrain", "retrain_window"):
        images = trained
    elif rule == "lmc_child":
        images = trained * (1 - int(w["epoch"]) / epochs)
    elif rule == "score":
        images = n * (2 if w["kind"] == "grand" else 1 / 3)  # GraNd: about half training speed
    elif rule == "ntk_velocity":
        ntk = config["experiments"]["ntk"]
        blocks = ntk["blocks"] or n // ntk["block_size"]
        classes = spec.get("num_classes") or CLASSES.get(spec.get("name", w["dataset"]), 10)
        images = 2 * blocks * ntk["block_size"] * classes  # one backward per logit, at two checkpoints
    else:
        images = 0
    return images / rate / 3600


def summarize(jobs, config):
    table = defaultdict(lambda: [0, 0.0])
    for rule, w in jobs:
        row = table[experiment_of(rule, w, config)]
        row[0] += 1
        row[1] += gpu_hours(rule, w, config)
    return dict(table)


def main(configfile, extra=()):
    config = load_config(configfile, *extra)
    table = summarize(dry_run_jobs(configfile, extra), config)
    est = config["estimate"]
    print(f"{configfile}: jobs and GPU-hours per experiment, at "
          f"{', '.join(f'{a} {r:g} img/s' for a, r in est['images_per_second'].items())} on one {est['gpu']}")
    print(f"{'experiment':<26}{'jobs':>8}{'GPU-hours':>12}")
    for name, (jobs, hours) in sorted(table.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:<26}{jobs:>8}{hours:>12.1f}")
    print(f"{'total':<26}{sum(j for j, _ in table.values()):>8}{sum(h for _, h in table.values()):>12.1f}")
    return table
