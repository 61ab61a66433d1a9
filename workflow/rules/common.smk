# The study's vocabulary comes from the datadiet package (datadiet.study): names, the results layout,
# the config's checks and every experiment's targets. This file only adapts it to Snakemake.
#
# A job's params are what it is (its spec: hyperparameters); where it runs is not among them: threads
# come from `threads:`, the device from `resources:` and the tracking store from the results folder or
# MLFLOW_TRACKING_URI. Moving the checkout or pointing jobs at an MLflow server therefore reruns nothing.
import json
import re
import os
import shlex
import sys

from snakemake.settings.types import DeploymentMethod

from datadiet.study import cluster, config as study_config, layout, names, specs
from datadiet.study.config import ConfigError
from datadiet.study import experiments
from datadiet.study.experiments import lmc, size_sweep

STUDY = study_config.Study(config)
try:
    STUDY.check()
    STUDY.check_same_study()
except ConfigError as error:
    raise WorkflowError(str(error))
OUT = STUDY.out
if config["tracking"]["uri"]:  # the environment's wins, as it does for jobs
    os.environ.setdefault("MLFLOW_TRACKING_URI", config["tracking"]["uri"])


onstart:
    check_slurm_submission()
    STUDY.record()


wildcard_constraints:
    dataset=r"[A-Za-z0-9_.-]+",
    arch=names.ARCH,
    noise=r"[0-9.]+",
    seed=r"\d+",
    rep=r"\d+",
    keep=r"[0-9.]+",
    epoch=r"\d+",
    left_out=r"[0-9.]+",
    child=r"[01]",
    kind="|".join(names.AT_EPOCH),
    score=names.SCORE,
    method=names.METHOD,


def path(template, **values):
    """A path of this study (layout.<TEMPLATE>), its unfilled fields left as wildcards."""
    return STUDY.path(template, **values)


def job_log(where):
    return path(layout.log(where))


def run_log(rule, where):
    return path(layout.run_log(rule, where))


def run_benchmark(rule, where):
    return path(layout.run_benchmark(rule, where))


def cluster_resources(kind):
    """Slurm resources of a kind of job (config cluster.jobs.<kind>), as snakemake-executor-plugin-slurm
    reads them (local runs ignore them), and the device."""
    try:
        return {"device": config["device"], **cluster.resources(config["cluster"], kind)}
    except ConfigError as error:
        raise WorkflowError(str(error))


def check_slurm_submission():
    """Submitting to Slurm, a job that asks for a GPU needs a partition, unless the plugin picks partitions
    (--slurm-partition-config). Runs at the start (onstart): the executor is known only then. Not in local
    runs, dry runs, or a job's step inside Slurm (executor slurm-jobstep, and no onstart there)."""
    if workflow.executor_plugin.name != "slurm":
        return
    if workflow.executor_settings.partition_config or os.environ.get("SNAKEMAKE_SLURM_PARTITIONS"):
        return
    try:
        cluster.check_gpu_partition(config["cluster"])
    except ConfigError as error:
        raise WorkflowError(str(error))


# Jobs run the package with the interpreter that runs Snakemake (a Slurm job step runs that one too), so
# nothing needs .venv/bin on PATH; in a --sdm conda environment (envs/datadiet.yaml, which holds the
# package's dependencies, not the package), that environment's python on the checkout's src/.
IN_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
SRC = shlex.quote(os.path.join(workflow.basedir, "src"))
DATADIET = f"PYTHONPATH={SRC} python -m datadiet" if IN_CONDA else f"{shlex.quote(sys.executable)} -m datadiet"


def job(step, extra="", spec="params.spec", log="log", **files):
    """The shell command of a tracked job step: its spec (`spec`) and wildcards (params.wildcards), its
    threads and files (name=option value, e.g. dataset="input.dataset"); its log (`log`) gets the output."""
    options = "".join(f" --{name.replace('_', '-')} {{{value}:q}}" for name, value in files.items())
    options += f" {extra}" if extra else ""
    return (
        f"{DATADIET} job {step} --spec {{{spec}:q}} --wildcards {{params.wildcards:q}} --rule {{params.rule}}"
        f" --threads {{threads}} --device {{resources.device}} --tracked {{input.tracked:q}}{options} > {{{log}:q}} 2>&1"
    )


def spec(make, *args):
    """A params function: the job's spec for these wildcards (specs.<make>(STUDY, wildcards, *args)), as JSON
    for the shell."""
    return lambda wildcards: json.dumps({"study": STUDY.name, **make(STUDY, wildcards, *args)}, sort_keys=True)


def run_specs(template, make, files):
    """A params function of a job that makes several runs, one a file of its output `files` (made from
    layout `template`): the spec of each, specs.<make>(STUDY, wildcards, fields of its file), as a JSON list."""
    return lambda wildcards, output: json.dumps(
        [{"study": STUDY.name, **make(STUDY, wildcards, layout.parse(template, file))} for file in output[files]],
        sort_keys=True,
    )


def one_after_another(resources, runs):
    """The resources of a job that makes `runs` runs one after another: their time limits add up."""
    return {**resources, "runtime": resources["runtime"] * runs}


def wildcards_json(wildcards):
    return json.dumps(dict(wildcards.items()), sort_keys=True)


# The datasets of the config, and the size sweep's subsets of one of them (<dataset>_n<size>).
CONFIGURED = "|".join(map(re.escape, STUDY.datasets))
SUBSETS = "|".join(map(re.escape, STUDY.subsets)) or "(?!)"  # (?!): matches nothing

TRACKED = path(layout.TRACKED)
DATASET = path(layout.DATASET)
LABELS = path(layout.LABELS)
RUNS = path(layout.RUNS)


def figure(name, category="Figures"):
    return report(path(f"{layout.FIGURES}/{name}.png"), caption=f"../report/{name}.rst", category=category)


# Scores and retraining: a job's runs (`rep`) and their specs.


def checkpoints_of(scores):
    return [path(layout.CHECKPOINT, epoch=names.Score.parse(s).epoch) for s in scores]


def score_checkpoints(scores):
    """A params function: the checkpoint each of `scores` is taken from, in their order (one may serve two)."""
    return lambda w: [path(layout.CHECKPOINT, **dict(w.items()), epoch=names.Score.parse(s).epoch) for s in scores]


def seed_scores(scores):
    return [path(layout.SEED_SCORES, score=s) for s in scores]


def runs_of(template, runs, name):
    """The files `name` of a job's runs: one for each rep in `runs`, its other fields left as wildcards."""
    return expand(f"{template}/{name}", rep=runs, allow_missing=True)


def out_dirs(w, output):
    return [os.path.dirname(result) for result in output.result]


def one_of(values):
    """A wildcard constraint: exactly one of `values` (numbers as paths write them)."""
    return "|".join(re.escape(layout.number(v) if isinstance(v, float) else str(v)) for v in values)
