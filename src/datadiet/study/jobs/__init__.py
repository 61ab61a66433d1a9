"""The study's job steps, as the workflow's rules call them: `datadiet job <name> --spec JSON ...`.

Each step: the module holding its function (imported only when the step runs, so the untracked steps
never import MLflow), whether it is tracked (an MLflow run: --spec, --rule, --wildcards, --tracked,
--threads, --device) and its file options (`+`: one or more files, `*`: any number, `?`: optional).
A step that makes several runs one after another (a cluster job worth scheduling) takes a list of
specs, one a run, and a file of each `+` option a run.
"""

import argparse

from .. import experiments

REPORT_INPUTS = " ".join(f"--{name.replace('_', '-')}*" for name in experiments.inputs())
JOBS = {
    "init-tracking": ("setup", False, "--store-dir --experiment --out"),
    "download": ("setup", False, "--spec --out"),
    "prepare-data": ("setup", False, "--spec --cache --out"),
    "corrupt-labels": ("setup", False, "--dataset --fraction --seed --out"),
    "aggregate": ("setup", False, "--inputs+ --out"),
    "train-scoring": ("scores", True, "--dataset --labels --out-dir --forgetting? --aum?"),
    "score": ("scores", True, "--dataset --labels --checkpoint+ --train-result --out+"),
    "input-norm": ("scores", True, "--dataset --labels --out"),
    "retrain": ("pruning", True, "--dataset --labels --out-dir+ --scores*"),
    "ntk-velocity": ("dynamics", True, "--dataset --labels --before --after --scores --out"),
    "lmc-child": ("dynamics", True, "--dataset --labels --spawn --parent --out-dir"),
    "lmc-barrier": ("dynamics", True, "--dataset --labels --children+ --results+ --scores --out"),
    # The report reads every experiment's result files (experiments.inputs), an option each.
    "report": ("report", False, f"--spec --tracked --captions {REPORT_INPUTS} --benchmarks --out-dir --html"),
}
HELP = {
    "init-tracking": "create the MLflow store and experiment once",
    "download": "fetch a torchvision dataset (where the internet is), decode nothing",
    "prepare-data": "decode, cache and subset a dataset",
    "corrupt-labels": "permute a fraction of the training labels",
    "aggregate": "mean of per-seed scores",
    "train-scoring": "full-data training run for scores",
    "score": "the GraNd and EL2N scores of a scoring run, each from its checkpoint",
    "input-norm": "the input-norm control score",
    "retrain": "the repeats of a retraining point: select a subset and train on it",
    "ntk-velocity": "NTK velocity of score-sorted blocks",
    "lmc-child": "train a child from a parent's spawn state",
    "lmc-barrier": "error barriers between children",
    "report": "figures, claims and the HTML report from result files",
}


def each_run(args, *files, own):
    """The runs of a job that makes several (--spec: a list), one after another: the arguments of each and
    its file of each of `files`. A run's arguments hold its spec, its own wildcards beside the job's
    (`own`: wildcard -> spec field; they tell its MLflow run apart from the job's others), and whether
    its end is the job's end (only the last's: a stop still interrupts the runs after the first)."""
    last = len(args.spec) - 1
    for i, (spec, *paths) in enumerate(zip(args.spec, *files, strict=True)):
        wildcards = {**args.wildcards, **{name: str(spec[field]) for name, field in own.items()}}
        yield argparse.Namespace(**{**vars(args), "spec": spec, "wildcards": wildcards, "ends_job": i == last}), *paths
