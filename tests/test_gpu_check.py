"""`make gpu-check`: on a CPU it says it needs a GPU; its plumbing runs on a slice of real CIFAR-10."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from datadiet import data
from datadiet.tools import gpu_check
from datadiet.train import TrainConfig, TrainSet
from paths import CIFAR, ROOT

OUTCOMES = {"reproduced", "not reproduced", "inconclusive", "underpowered"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_says_so_and_exits_0():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "datadiet.tools.gpu_check"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "needs a GPU" in proc.stdout


@pytest.mark.skipif(not CIFAR.exists(), reason="the check trains on real CIFAR-10 images (../shared/data)")
def test_its_plumbing_on_a_slice_gives_accuracies_paired_verdicts_and_throughput(tmp_path):
    out = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--tiny", "--eager", "--data", str(CIFAR), "--out", str(out), "--budget", "100000"]) == 0
    report = json.loads(out.read_text())
    proxy, resnet = report["proxy"], report["resnet18"]
    assert proxy["network"] == "airbench width 4" and proxy["recipe"]["schedule"] == "one_cycle"
    assert resnet["network"] == "resnet18 width 4" and resnet["recipe"]["schedule"] == "multistep"
    assert set(proxy["accuracy"]) == {"full 1", "random 0.5", "el2n 0.5", "random 0.7", "el2n 0.7"}
    assert set(resnet["accuracy"]) == {"random 0.5", "el2n 0.5"}
    for part in (proxy, resnet):
        assert all(len(runs) == 3 and all(0 <= a <= 100 for a in runs) for runs in part["accuracy"].values())
        assert part["train_img_s"] > 0 and part["flops_per_image"] > 0 and part["bf16_peak_fraction"] is None
        for claim in part["claims"]:  # paired on the init seed, 3 repeats: a verdict, with its bounds
            assert claim["n"] == 3 and claim["verdict"] in OUTCOMES and claim["ci_low"] <= claim["ci_high"]
    assert [c["claim"] for c in proxy["claims"]] == [
        "EL2N@1 keep_max beats random (50% kept)",
        "EL2N@1 keep_max loses nothing to full data (50% kept)",
        "EL2N@1 keep_max beats random (70% kept)",
        "EL2N@1 keep_max loses nothing to full data (70% kept)",
    ]
    pairs = zip(proxy["accuracy"]["el2n 0.5"], proxy["accuracy"]["random 0.5"])  # by repeat
    estimate = sum(el2n - random for el2n, random in pairs) / 3
    assert proxy["claims"][0]["estimate"] == pytest.approx(estimate, abs=0.01)  # accuracies rounded to 0.01


def synthetic_splits(per_class=30):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(10 * per_class) % 10
    images = torch.randint(0, 256, (len(labels), 3, 32, 32), dtype=torch.uint8, generator=g)
    return {split: data.Split(images, labels, [f"class{c}" for c in range(10)]) for split in data.SPLITS}


def test_a_part_is_left_out_when_its_runs_would_not_fit_the_time_left():
    splits = synthetic_splits()
    train_set = TrainSet(
        splits["train"].images, splits["train"].labels, torch.full((3,), 128.0), torch.full((3,), 64.0)
    )
    test = (splits["test"].images, splits["test"].labels)
    check = gpu_check.Check(
        "resnet18", 2, TrainConfig(epochs=2, batch_size=32), 1, train_set, test, torch.device("cpu")
    )
    skipped = gpu_check.headline(check, (0.5,), 3, 0, None, deadline=time.perf_counter())
    assert set(skipped) == {"skipped", "seconds"} and "img/s" in skipped["skipped"]
    # What it would have needed after the scoring run it timed: 1 more (9 steps of 32), then 6 retraining
    # runs of as many steps as 2 epochs of full data (budget: steps), and the EL2N and test passes.
    trained, forwarded = gpu_check.remaining_work(check, (0.5,), 3, 0)
    assert trained == 1 * 9 * 32 + 6 * 2 * 9 * 32 and forwarded == 300 + 6 * 300


def test_on_a_bare_machine_it_runs_without_torchvision_and_trains_eagerly_where_compiling_fails(tmp_path):
    # A bare GPU machine: no torchvision (the decoded file instead of the JPEG archive), no MLflow or
    # Snakemake, and no working C++ compiler for torch.compile.
    blocked = tmp_path / "blocked"
    for name in ("torchvision", "mlflow", "snakemake"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not on this machine')\n")
    decoded = tmp_path / "cifar10.pt"
    data.save_decoded(synthetic_splits(), decoded)
    env = {
        **os.environ,
        "PYTHONPATH": f"{blocked}{os.pathsep}{ROOT / 'src'}",
        "CXX": "/bin/false",
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
    }
    out = tmp_path / "gpu-check.json"
    cmd = [sys.executable, "-m", "datadiet.tools.gpu_check", "--tiny", "--data", str(decoded), "--out", str(out)]
    proc = subprocess.run(cmd + ["--budget", "100000"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = [line for line in proc.stdout.splitlines() if "torch.compile failed" in line]
    assert len(said) == 1 and "training eagerly" in said[0]  # once, for both parts
    report = json.loads(out.read_text())
    assert report["proxy"]["recipe"]["compile"] and report["proxy"]["accuracy"]["full 1"]
    assert len(report["resnet18"]["accuracy"]["el2n 0.5"]) == 3
