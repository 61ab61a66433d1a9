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


# Tracked rules also pass their own name (params.rule): the MLflow tag that says which step made a run.
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


# Set-up (setup.smk). Keys of a datasets entry that say how the study uses the data, not how to read it.
STUDY_KEYS = ("arch", "how_early_keep", "batch_size", "train_size")


def data_spec(dataset):
    spec = {k: v for k, v in DATASETS[dataset].items() if k not in STUDY_KEYS}
    return {"name": dataset, **spec}


# Pruning (pruning.smk): which subsets each retraining run needs.


def selection_spec(method):
    """How the retrain command picks its subset for a method name."""
    if score_of(method) is None:
        return {"kind": "random"}
    if method.startswith("ccs-"):
        return {"kind": "ccs", **config["pruning"]["ccs"]}
    return {"kind": config["pruning"]["strategy"]}


def method_scores(w):
    score = score_of(w.method)
    if score is None:
        return []
    score, _, other_arch = score.partition("-from-")
    return [score_file(w.dataset, other_arch or w.arch, w.noise, score)]


def retrain_result(dataset, arch, noise, method, keep, rep):
    return f"{OUT}/{dataset}/{arch}/retrain/noise{noise}/{method}/keep{keep}/rep{rep}/result.json"


def curve_results():
    """The pruning curve of every dataset at every noise level: full data once, every method at
    every pruned fraction (under noise, noise.methods)."""
    paths = []
    for dataset in DATASETS:
        for noise in NOISE:
            methods = METHODS if noise == CLEAN else NOISY_METHODS
            paths += [retrain_result(dataset, arch_of(dataset), noise, "full", "1.0", r) for r in REPEATS]
            paths += [
                retrain_result(dataset, arch_of(dataset), noise, m, k, r) for m in methods for k in PRUNED for r in REPEATS
            ]
    return paths


def how_early_results():
    """Fig. 1 top: one kept fraction per dataset, GraNd@t and EL2N@t for every early t, with
    forgetting and random as reference lines (clean labels)."""
    paths = []
    for dataset, spec in DATASETS.items():
        keep = str(float(spec["how_early_keep"]))
        methods = [f"{k}_e{t}" for k in ("grand", "el2n") for t in HOW_EARLY["epochs"]] + ["forgetting", "random"]
        paths += [retrain_result(dataset, arch_of(dataset), CLEAN, m, keep, r) for m in methods for r in REPEATS]
    return paths


def window_results():
    """Fig. 2: a window of each kept fraction slid over the ranking, clean and under every noise level."""
    dataset = WINDOW["dataset"]
    return expand(
        f"{OUT}/{dataset}/{arch_of(dataset)}/window/noise{{noise}}/{WINDOW['score']}/keep{{keep}}/pos{{position}}/rep{{rep}}/result.json",
        noise=NOISE,
        keep=[str(float(k)) for k in WINDOW["kept"]],
        position=[str(float(p)) for p in WINDOW["positions"]],
        rep=range(WINDOW["repeats"]),
    )


def transfer_results():
    """Every architecture trained on the subsets chosen by every architecture's scores, plus
    random subsets and full data for each as the reference."""
    dataset, score, keep = TRANSFER["dataset"], TRANSFER["score"], str(float(TRANSFER["keep"]))
    paths = []
    for arch in TRANSFER["archs"]:
        methods = ["random"] + [score if by == arch else f"{score}-from-{by}" for by in TRANSFER["archs"]]
        paths += [retrain_result(dataset, arch, CLEAN, m, keep, r) for m in methods for r in REPEATS]
        paths += [retrain_result(dataset, arch, CLEAN, "full", "1.0", r) for r in REPEATS]
    return paths


# Training dynamics (dynamics.smk).


def ntk_results():
    """Velocity at every NTK epoch, clean and under every noise level."""
    dataset = NTK["dataset"]
    return expand(
        f"{OUT}/{dataset}/{arch_of(dataset)}/ntk/noise{{noise}}/velocity_e{{epoch}}.csv",
        noise=NOISE,
        epoch=NTK["epochs"],
    )


def lmc_results():
    dataset = LMC["dataset"]
    return [f"{OUT}/{dataset}/{arch_of(dataset)}/lmc/noise{CLEAN}/barrier.csv"]


# Report (report.smk): every file it reads, and its figures with their captions.


def report_scores():
    """Clean: every score (rank correlations, seeds); noisy: the scores the noisy methods use."""
    paths = []
    for dataset in DATASETS:
        arch = arch_of(dataset)
        paths += [score_file(dataset, arch, CLEAN, s) for s in ALL_SCORES]
        noisy = sorted({score_of(m) for m in NOISY_METHODS if score_of(m)} | {WINDOW["score"], NTK["score"]})
        paths += [score_file(dataset, arch, n, s) for n in NOISY for s in noisy]
    return paths


FIGURES = f"{OUT}/figures"


def figure(name, category="Figures"):
    return report(f"{FIGURES}/{name}.png", caption=f"../report/{name}.rst", category=category)
