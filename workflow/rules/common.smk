# Names and parameters shared by every stage. Rules only wire files; what a job needs goes to
# the datadiet CLI as one JSON --spec, so every resolved hyperparameter reaches MLflow.
import json
import os
import re

STUDY = config["study"]
OUT = f"{config['results_dir']}/{STUDY}"
SEEDS = list(range(config["scores"]["seeds"]))
REPEATS = list(range(config["pruning"]["repeats"]))
NOISE = [str(float(level)) for level in config["noise"]["levels"]]
KEPT = [str(float(k)) for k in config["pruning"]["kept"]]
PRUNED = [k for k in KEPT if float(k) < 1]
METHODS = config["pruning"]["methods"]
SCORED = [f"grand_e{t}" for t in config["scores"]["grand_epochs"]] + [
    f"el2n_e{t}" for t in config["scores"]["el2n_epochs"]
]
ALL_SCORES = SCORED + ["forgetting", "input_norm"]
CHECKPOINT_EPOCHS = sorted({int(s.split("_e")[1]) for s in SCORED})
TRACKING = {
    "uri": config["tracking"]["uri"] or f"sqlite:///{os.path.abspath(OUT)}/mlflow.db",
    "experiment": STUDY,
}

for method in METHODS:
    if method != "random" and method not in ALL_SCORES:
        raise WorkflowError(
            f"config pruning.methods: {method!r} needs a score this config does not compute; "
            f"computed scores: {ALL_SCORES} (add the epoch to scores.grand_epochs / scores.el2n_epochs)"
        )
if CHECKPOINT_EPOCHS and CHECKPOINT_EPOCHS[-1] > config["train"]["epochs"]:
    raise WorkflowError(
        f"config scores: epoch {CHECKPOINT_EPOCHS[-1]} is past the end of training "
        f"(train.epochs = {config['train']['epochs']})"
    )
if config["data"]["source"] != "torchvision" and not os.path.exists(config["data"].get("path", "")):
    raise WorkflowError(f"config data.path: {config['data'].get('path')!r} does not exist")


wildcard_constraints:
    noise=r"[0-9.]+",
    seed=r"\d+",
    rep=r"\d+",
    keep=r"[0-9.]+",
    epoch=r"\d+",
    kind="grand|el2n",
    method=r"full|random|forgetting|input_norm|(grand|el2n)_e\d+",


def training_spec(run, noise, **job):
    """What a training job needs: model, schedule, seeds (by run), threads and tracking."""
    return {
        "study": STUDY,
        "tracking": TRACKING,
        "threads": config["threads"],
        "model": config["model"],
        "train": config["train"],
        "run": int(run),
        "noise": float(noise),
        **job,
    }


def as_json(make_spec):
    """A params function: the spec for this job's wildcards, as JSON for the shell."""
    return lambda wildcards: json.dumps(make_spec(wildcards), sort_keys=True)


def wildcards_json(wildcards):
    return json.dumps(dict(wildcards.items()), sort_keys=True)


def score_file(noise, method):
    return f"{OUT}/scores/noise{noise}/{method}/mean.csv"


TRACKED = f"{OUT}/mlflow/store.json"
DATASET = f"{OUT}/data/dataset.pt"
LABELS = f"{OUT}/data/labels_noise{{noise}}.pt"
