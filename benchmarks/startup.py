"""How long a job takes to start: from its process's start to its first training step (imports, data,
MLflow run), as the job itself prints it, beside the bare `import torch` every job pays."""

import json
import re
import statistics
import subprocess
import sys
import time

import torch

from benchmarks.common import Entry
from datadiet.runtime import files, tracking

SPEC = {
    "dataset": "synthetic",
    "model": {"arch": "resnet18", "width": 2, "init": "flax"},
    "never_learned": "inf",
    "noise": 0.0,
    "run": 0,
    "checkpoint_epochs": [0, 2, 6],
    "spawn_epochs": [],
    "study": "faults",
    "train": {
        "batch_size": 32,
        "budget": "steps",
        "crop_per_batch": False,
        "epochs": 6,
        "lr": 0.1,
        "lr_gamma": 0.2,
        "lr_milestones": [0.3, 0.6, 0.8],
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 0.0005,
    },
}


def job_files(tmp, experiment="faults"):
    """A study's dataset and labels files (192 synthetic 3-class images), an initialised MLflow store
    and its marker (store.json); returns the store's URI."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(192) % 3
    images = torch.randint(0, 256, (192, 3, 32, 32), dtype=torch.uint8, generator=g)
    images[torch.arange(192), labels] = 255
    dataset = {
        "train_images": images,
        "train_labels": labels,
        "train_source_index": torch.arange(192),
        "test_images": images[:60],
        "test_labels": labels[:60],
        "classes": ["a", "b", "c"],
        "mean": torch.full((3,), 0.5),
        "std": torch.full((3,), 0.25),
    }
    files.save_tensors(dataset, tmp / "dataset.pt")
    files.save_tensors({"labels": labels, "corrupted": torch.tensor([], dtype=torch.long)}, tmp / "labels.pt")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    tracking.init_store(uri, experiment, tmp / "artifacts")
    files.write_json({"uri": uri, "experiment": experiment}, tmp / "store.json")
    return uri


def train_scoring_command(tmp, out, spec=SPEC):
    """The command of the train_scoring rule on the files of job_files(tmp)."""
    return [
        sys.executable, "-m", "datadiet", "job", "train-scoring", "--spec", json.dumps(spec),
        "--rule", "train_scoring", "--wildcards", json.dumps({"seed": "0"}), "--tracked", str(tmp / "store.json"),
        "--threads", "1", "--dataset", str(tmp / "dataset.pt"), "--labels", str(tmp / "labels.pt"),
        "--out-dir", str(out), "--forgetting", str(out / "forgetting.csv"), "--aum", str(out / "aum.csv"),
    ]  # fmt: skip


def first_step_seconds(tmp, out):
    done = subprocess.run(train_scoring_command(tmp, out), capture_output=True, text=True)
    found = re.search(r"first step ([0-9.]+) s after the process started", done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"the job failed or printed no first step:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return float(found.group(1))


def import_torch_seconds():
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def run(tmp, repeats=5):
    job_files(tmp)
    startup, torch_import = [], []
    for i in range(repeats):  # interleaved: a busy moment slows both alike
        startup.append(first_step_seconds(tmp, tmp / f"job{i}"))
        torch_import.append(import_torch_seconds())
    note = f"median of {repeats} train-scoring jobs; baseline: a bare `python -c 'import torch'`"
    return [Entry("job_startup_s", statistics.median(startup), "s", statistics.median(torch_import), "<= 2", note)]
