"""Running the workflow from the tests: the tiny study on real CIFAR-10 images (synthetic JPEGs
without ../shared), run once per session and shared by the local and the Slurm tests."""

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import torch
import yaml
from torchvision.io import encode_jpeg

from paths import CIFAR, ROOT

# One thread a job and more slots than that: at least 8 jobs log to MLflow at once (the concurrency
# a cluster sees). With exactly 8 slots, a job's imports and the untracked jobs keep the overlap of
# the MLflow runs themselves at 7.
# The rules whose jobs log no MLflow run.
UNTRACKED = {"prepare_data", "corrupt_labels", "init_tracking", "aggregate_scores", "report", "all"}
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "12"]


def synthetic_jpeg_tar(path, per_class=40, classes=10):
    """A CIFAR-shaped stand-in (used only where ../shared/data is absent)."""
    g = torch.Generator().manual_seed(0)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", per_class), ("test", per_class // 2)):
            for c in range(classes):
                for i in range(n):
                    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
                    image[c % 3] = image[c % 3] // 2 + 25 * c
                    payload = encode_jpeg(image).numpy().tobytes()
                    info = tarfile.TarInfo(f"cifar10/{split}/class{c}/{i:04d}.jpg")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    return path


def run_snakemake(overrides, *args, check=True, targets=(), cwd=ROOT, env=None, preset="config/tiny.yaml"):
    """Snakemake on the `preset` (the tiny one) and `overrides`, in the checkout `cwd`; `env`: more
    variables (the shell's MLFLOW_TRACKING_URI is not passed on, nor a Slurm job's SLURM_*: the tests
    may run inside one, and their studies are local, with SQLite stores a Slurm job refuses)."""
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI" and not k.startswith("SLURM_")}
    env = {**inherited, "PATH": path, **(env or {})}
    # Targets go before --configfile: after it, they would be read as config files.
    cmd = [*SNAKEMAKE, *map(str, targets), "--configfile", preset, str(overrides), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}")
    return proc


def write_overrides(tmp, **config):
    path = tmp / f"overrides-{len(list(tmp.glob('overrides-*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def study_overrides(tmp, results_dir):
    """The tiny study's overrides: its results folder, and synthetic images where ../shared is absent."""
    overrides = {"results_dir": str(results_dir)}
    if not CIFAR.exists():
        overrides["datasets"] = {"cifar10": {"path": str(synthetic_jpeg_tar(tmp / "synthetic.tar.gz"))}}
    return write_overrides(tmp, **overrides)


def max_overlap(runs):
    """Most MLflow runs that were running at the same moment."""
    events = sorted([(r.info.start_time, 1) for r in runs] + [(r.info.end_time, -1) for r in runs])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def job_key(run):
    """The job an MLflow run belongs to: its rule and wildcards, from the run's tags."""
    return (run.data.tags["rule"],) + tuple(
        sorted((k, v) for k, v in run.data.tags.items() if k.startswith("wildcard."))
    )
