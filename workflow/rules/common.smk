# Names and parameters shared by every stage. Rules only wire files; what a job needs goes to
# the datadiet CLI as one JSON --spec, so every resolved hyperparameter reaches MLflow.
#
# Every path under results/<study>/ starts with <dataset>/<arch>/ (or <dataset>/data/): one DAG
# holds every dataset and architecture of the paper, and two of them never share a file.
import json
import os
import re

STUDY = config["study"]
OUT = f"{config['results_dir']}/{STUDY}"
DATASETS = config["datasets"]
FIRST = next(iter(DATASETS))
SEEDS = list(range(config["scores"]["seeds"]))
REPEATS = list(range(config["pruning"]["repeats"]))
NOISE = [str(float(level)) for level in config["noise"]["levels"]]
CLEAN = NOISE[0]
NOISY = NOISE[1:]
KEPT = [str(float(k)) for k in config["pruning"]["kept"]]
PRUNED = [k for k in KEPT if float(k) < 1]
METHODS = config["pruning"]["methods"]
NOISY_METHODS = config["noise"]["methods"] or METHODS
EXPERIMENTS = config["experiments"]
HOW_EARLY = EXPERIMENTS["how_early"]
WINDOW, TRANSFER, NTK, LMC = (
    {**EXPERIMENTS[name], "dataset": EXPERIMENTS[name]["dataset"] or FIRST}
    for name in ("window", "transfer", "ntk", "lmc")
)
GRAND_EPOCHS = sorted(set(config["scores"]["grand_epochs"]) | set(HOW_EARLY["epochs"]))
EL2N_EPOCHS = sorted(set(config["scores"]["el2n_epochs"]) | set(HOW_EARLY["epochs"]))
SCORED = [f"grand_e{t}" for t in GRAND_EPOCHS] + [f"el2n_e{t}" for t in EL2N_EPOCHS]
ALL_SCORES = SCORED + ["forgetting", "aum", "input_norm"]
# Checkpoints every scoring run keeps: the score epochs and both ends of each NTK-velocity step.
CHECKPOINT_EPOCHS = sorted({int(s.split("_e")[1]) for s in SCORED} | {e + d for e in NTK["epochs"] for d in (0, 1)})
SPAWN_EPOCHS = sorted(LMC["spawn_epochs"])
TRACKING = {
    "uri": config["tracking"]["uri"] or f"sqlite:///{os.path.abspath(OUT)}/mlflow.db",
    "experiment": STUDY,
}


def score_of(method):
    """The score a selection method ranks by ('ccs-el2n_e2' -> 'el2n_e2'); None for random/full."""
    return None if method in ("full", "random") else method.removeprefix("ccs-")


def check_config():
    """What the schema cannot say: names that must refer to each other, epochs inside training."""
    for key, methods in (("pruning.methods", METHODS), ("noise.methods", NOISY_METHODS)):
        for method in methods:
            if score_of(method) not in (None, *ALL_SCORES):
                raise WorkflowError(
                    f"config {key}: {method!r} needs a score this config does not compute; "
                    f"computed scores: {ALL_SCORES} (add the epoch to scores.grand_epochs / scores.el2n_epochs)"
                )
    for name, section in (("window", WINDOW), ("transfer", TRANSFER), ("ntk", NTK), ("lmc", LMC)):
        if section["dataset"] not in DATASETS:
            raise WorkflowError(f"config experiments.{name}.dataset: {section['dataset']!r} is not in datasets")
        if section["score"] not in ALL_SCORES:
            raise WorkflowError(f"config experiments.{name}.score: {section['score']!r} is not a computed score {ALL_SCORES}")
    last = max(CHECKPOINT_EPOCHS + SPAWN_EPOCHS, default=0)
    if last > config["train"]["epochs"]:
        raise WorkflowError(
            f"config: epoch {last} (a score, NTK or spawn epoch) is past the end of training "
            f"(train.epochs = {config['train']['epochs']})"
        )
    for name, spec in DATASETS.items():
        if spec["source"] != "torchvision" and not os.path.exists(spec.get("path", "")):
            raise WorkflowError(f"config datasets.{name}.path: {spec.get('path')!r} does not exist")


# Two configs never share a results folder: the first run records the config it ran with (less
# where it runs and logs), and another config is refused there before any job starts.
STUDY_CONFIG = f"{OUT}/study_config.json"
PLACEMENT_KEYS = ("results_dir", "tracking", "cluster", "estimate")


def study_config():
    return json.loads(json.dumps({k: v for k, v in config.items() if k not in PLACEMENT_KEYS}))


def differing_keys(a, b, prefix=""):
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [prefix.rstrip(".")]
    return [key for k in sorted(set(a) | set(b)) for key in differing_keys(a.get(k), b.get(k), f"{prefix}{k}.")]


def check_same_study():
    if not os.path.exists(STUDY_CONFIG):
        return
    with open(STUDY_CONFIG) as f:
        differs = differing_keys(json.load(f), study_config())
    if differs:
        raise WorkflowError(
            f"{OUT} holds study {STUDY!r} made with another config (it differs in {', '.join(differs)}); "
            f"give this config another `study:` name, or delete {OUT} to start it over"
        )


def record_study_config():
    if not os.path.exists(STUDY_CONFIG):
        os.makedirs(OUT, exist_ok=True)
        with open(STUDY_CONFIG, "w") as f:
            json.dump(study_config(), f, indent=2, sort_keys=True)


check_config()
check_same_study()


onstart:
    record_study_config()


wildcard_constraints:
    dataset=r"[A-Za-z0-9_.-]+",
    arch=r"resnet18|resnet50",
    noise=r"[0-9.]+",
    seed=r"\d+",
    rep=r"\d+",
    keep=r"[0-9.]+",
    epoch=r"\d+",
    position=r"[0-9.]+",
    child=r"[01]",
    kind="grand|el2n",
    score=r"forgetting|aum|input_norm|(grand|el2n)_e\d+",
    method=r"full|random|(ccs-)?(forgetting|aum|input_norm|(grand|el2n)_e\d+)(-from-resnet(18|50))?",


def cluster_resources(kind):
    """Slurm resources of a kind of job (config cluster.jobs.<kind>): memory, time limit, GPUs and
    partition, as snakemake-executor-plugin-slurm reads them. Local runs ignore them."""
    job, cluster = config["cluster"]["jobs"][kind], config["cluster"]
    partition = (job["gpus"] and cluster["gpu_partition"]) or cluster["partition"]
    return {
        "mem_mb": job["mem_mb"],
        "runtime": job["runtime"],
        **({"gpu": job["gpus"]} if job["gpus"] else {}),
        **({"slurm_partition": partition} if partition else {}),
    }


def train_config(dataset):
    batch = DATASETS[dataset]["batch_size"]
    return {**config["train"], **({"batch_size": batch} if batch else {})}


def training_spec(wildcards, run, **job):
    """What a training job needs: model, schedule, seeds (by run), threads and tracking."""
    return {
        "study": STUDY,
        "tracking": TRACKING,
        "threads": config["threads"],
        "device": config["device"],
        "dataset": wildcards.dataset,
        "model": {"arch": wildcards.arch, "width": config["model"]["width"]},
        "train": train_config(wildcards.dataset),
        "run": int(run),
        "noise": float(wildcards.noise),
        **job,
    }


def as_json(make_spec):
    """A params function: the spec for this job's wildcards, as JSON for the shell."""
    return lambda wildcards: json.dumps(make_spec(wildcards), sort_keys=True)


def wildcards_json(wildcards):
    return json.dumps(dict(wildcards.items()), sort_keys=True)


TRACKED = f"{OUT}/mlflow/store.json"
DATA = f"{OUT}/{{dataset}}/data"
DATASET = f"{DATA}/dataset.pt"
LABELS = f"{DATA}/labels_noise{{noise}}.pt"
RUNS = f"{OUT}/{{dataset}}/{{arch}}"  # everything trained or scored with one architecture on one dataset


def score_file(dataset, arch, noise, score):
    return f"{OUT}/{dataset}/{arch}/scores/noise{noise}/{score}/mean.csv"


def arch_of(dataset):
    return DATASETS[dataset]["arch"]
