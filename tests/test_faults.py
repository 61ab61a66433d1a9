"""Faults a job meets on a cluster, each through the command its rule runs: preemption (SIGTERM at a
random step, then the same command again), a diverging loss, and bad inputs."""
import json
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from torchvision.io import encode_jpeg

from datadiet import results, tracking
from datadiet.train import checkpoint, init_model

SPEC = {"dataset": "synthetic", "model": {"arch": "resnet18", "width": 2}, "never_learned": "inf", "noise": 0.0,
        "run": 0, "save_epochs": [0, 2, 6], "state_epochs": [], "study": "faults", "threads": 1,
        "train": {"batch_size": 32, "budget": "steps", "crop_per_batch": False, "epochs": 6, "lr": 0.1,
                  "lr_gamma": 0.2, "lr_milestones": [0.3, 0.6, 0.8], "momentum": 0.9, "nesterov": True,
                  "weight_decay": 0.0005}}


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A study's dataset and labels files (192 synthetic 3-class images) and an initialised store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(192) % 3
    images = torch.randint(0, 256, (192, 3, 32, 32), dtype=torch.uint8, generator=g)
    images[torch.arange(192), labels] = 255
    results.save_tensors({"train_images": images, "train_labels": labels, "train_source_index": torch.arange(192),
                          "test_images": images[:60], "test_labels": labels[:60], "classes": ["a", "b", "c"],
                          "mean": torch.full((3,), 0.5), "std": torch.full((3,), 0.25)}, tmp_path / "dataset.pt")
    results.save_tensors({"labels": labels, "corrupted": torch.tensor([], dtype=torch.long)}, tmp_path / "labels.pt")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.init_store(uri, "faults", tmp_path / "artifacts")
    return tmp_path, uri


def train_scoring(tmp, uri, out, spec=SPEC):
    """The command of the train_scoring rule, as a process (stdout in out.log)."""
    spec = {**spec, "tracking": {"uri": uri, "experiment": "faults"}}
    cmd = [sys.executable, "-m", "datadiet.cli", "train-scoring", "--spec", json.dumps(spec), "--rule", "train_scoring",
           "--wildcards", json.dumps({"seed": "0"}), "--dataset", str(tmp / "dataset.pt"),
           "--labels", str(tmp / "labels.pt"), "--out-dir", str(out), "--forgetting", str(out / "forgetting.csv"),
           "--aum", str(out / "aum.csv")]
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, stdout=open(out / "out.log", "a"), stderr=subprocess.STDOUT)


def runs(uri):
    client = MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name("faults").experiment_id], order_by=["start_time"])


def test_sigterm_at_a_random_step_then_the_same_command_resumes_bit_identically(files):
    tmp, uri = files
    assert train_scoring(tmp, uri, tmp / "whole").wait() == 0
    killed = tmp / "killed"
    job = train_scoring(tmp, uri, killed)
    # 6 steps an epoch, 36 in all: stop after the first saved state, at a random moment of a later epoch
    while not (killed / "work" / "state.pt").exists():
        assert job.poll() is None, (killed / "out.log").read_text()
        time.sleep(0.05)
    time.sleep(random.uniform(0, 1.5))
    job.send_signal(signal.SIGTERM)
    assert job.wait() == 130
    assert not (killed / "result.json").exists()
    log = (killed / "out.log").read_text()
    assert "stopped by signal 15; the same command resumes" in log and "Traceback" not in log
    assert train_scoring(tmp, uri, killed).wait() == 0
    log = (killed / "out.log").read_text()
    assert "resuming from" in log, log  # from the last report's state, not from the start
    for name in ("ckpt_e0.pt", "ckpt_e2.pt", "ckpt_e6.pt"):
        whole, resumed = torch.load(tmp / "whole" / name), torch.load(killed / name)
        for key, tensor in whole["model"].items():
            assert torch.equal(tensor, resumed["model"][key]), (name, key)
    for score in ("forgetting.csv", "aum.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(killed / score), pd.read_csv(tmp / "whole" / score))
    first, interrupted, resumed = runs(uri)
    assert (first.info.status, interrupted.info.status, resumed.info.status) == ("FINISHED", "KILLED", "FINISHED")
    assert results.read_json(killed / "result.json")["run_id"] == resumed.info.run_id  # what the report links


def test_a_diverging_loss_fails_the_run_and_leaves_no_output(files):
    tmp, uri = files
    out = tmp / "diverged"
    job = train_scoring(tmp, uri, out, {**SPEC, "train": {**SPEC["train"], "lr": 1e12}})
    assert job.wait() == 1
    log = (out / "out.log").read_text()
    assert "training diverged" in log and "Traceback" not in log
    assert [r.info.status for r in runs(uri)] == ["FAILED"]
    assert not any(out.glob("*.csv")) and not (out / "result.json").exists()


def datadiet(*args):
    return subprocess.run([sys.executable, "-m", "datadiet.cli", *map(str, args)], capture_output=True, text=True)


def test_a_checkpoint_of_another_architecture_is_named(files):
    tmp, uri = files
    results.save_tensors(checkpoint(init_model("resnet50", 3, 2, 0), "resnet50", 2, 3, 0), tmp / "ckpt.pt")
    results.write_json({"run_id": "x"}, tmp / "result.json")
    spec = {"kind": "el2n", "epoch": 0, "arch": "resnet18", "dataset": "synthetic", "noise": 0.0, "run": 0,
            "threads": 1, "grand_chunk_size": 8, "tracking": {"uri": uri, "experiment": "faults"}}
    proc = datadiet("score", "--spec", json.dumps(spec), "--dataset", tmp / "dataset.pt", "--labels", tmp / "labels.pt",
                    "--checkpoint", tmp / "ckpt.pt", "--train-result", tmp / "result.json", "--out", tmp / "el2n.csv")
    assert proc.returncode == 1
    assert f"checkpoint {tmp / 'ckpt.pt'} is a resnet50, expected resnet18" in proc.stderr


def test_a_score_file_of_another_length_is_named(files):
    tmp, uri = files
    results.write_scores(tmp / "short.csv", torch.arange(100), torch.zeros(100), {"mean": torch.rand(100)}, {"runs": []})
    spec = {"dataset": "synthetic", "keep": 0.5, "method": "el2n_e2", "model": {"arch": "resnet18", "width": 2},
            "noise": 0.0, "run": 0, "selection": {"kind": "keep_max"}, "study": "faults", "threads": 1,
            "tracking": {"uri": uri, "experiment": "faults"}, "train": SPEC["train"]}
    proc = datadiet("retrain", "--spec", json.dumps(spec), "--dataset", tmp / "dataset.pt", "--labels",
                    tmp / "labels.pt", "--scores", tmp / "short.csv", "--out-dir", tmp / "retrain")
    assert proc.returncode == 1
    assert f"score file {tmp / 'short.csv'} has 100 rows but the training set has 192 examples" in proc.stderr


@pytest.mark.parametrize("damage", ["missing", "truncated", "corrupt"])
def test_a_bad_dataset_file_is_named(files, damage):
    tmp, uri = files
    path = tmp / "dataset.pt"
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.write_bytes(b"not a torch file" * 100)
    proc = datadiet("corrupt-labels", "--dataset", path, "--fraction", 0.1, "--seed", 0, "--out", tmp / "noisy.pt")
    assert proc.returncode == 1
    assert str(path) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp / "noisy.pt").exists()


def test_an_image_folder_with_another_class_count_than_the_config_is_named(tmp_path):
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            (tmp_path / "images" / split / label).mkdir(parents=True)
            image = torch.full((3, 32, 32), 60 if label == "cat" else 200, dtype=torch.uint8)
            (tmp_path / "images" / split / label / "0.jpg").write_bytes(encode_jpeg(image).numpy().tobytes())
    spec = {"name": "mine", "source": "imagefolder", "path": str(tmp_path / "images"), "num_classes": 3,
            "image_size": 32, "download": False, "merge_valid": False}
    proc = datadiet("prepare-data", "--spec", json.dumps(spec), "--cache", tmp_path / "cache",
                    "--out", tmp_path / "dataset.pt")
    assert proc.returncode == 1
    assert f"{tmp_path / 'images'} has 2 classes, the config says num_classes=3" in proc.stderr
    assert not (tmp_path / "dataset.pt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without a GPU says")
def test_device_cuda_without_a_gpu_is_one_clear_error():
    from datadiet.cli import job_device
    with pytest.raises(ValueError, match="device: cuda, but torch sees no GPU"):
        job_device({"threads": 1, "device": "cuda"})
    assert job_device({"threads": 1, "device": "auto"}) == torch.device("cpu")
