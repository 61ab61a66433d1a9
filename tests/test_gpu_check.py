"""`make gpu-check`: on a CPU it says it needs a GPU; its plumbing runs on a slice of real CIFAR-10."""

import json
import os
import subprocess
import sys

import pytest
import torch

from datadiet import gpu_check
from datadiet.train import TrainConfig, TrainSet
from paths import CIFAR, ROOT

OUTCOMES = {"reproduced", "not reproduced", "inconclusive", "underpowered"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_says_so_and_exits_0():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "datadiet.gpu_check"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "needs a GPU" in proc.stdout


@pytest.mark.skipif(not CIFAR.exists(), reason="the check trains on real CIFAR-10 images (../shared/data)")
def test_its_plumbing_on_a_slice_gives_accuracies_paired_verdicts_and_throughput(tmp_path):
    out = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--tiny", "--data", str(CIFAR), "--out", str(out), "--budget", "100000"]) == 0
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


def test_resnet18_is_left_out_when_its_runs_would_not_fit_the_time_left():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8, generator=g)
    train_set = TrainSet(images, torch.arange(96) % 10, torch.full((3,), 0.5), torch.full((3,), 0.25))
    cfg = TrainConfig(epochs=2, batch_size=32)
    check = gpu_check.Check("resnet18", 2, cfg, 1, train_set, None, torch.device("cpu"))
    skipped = gpu_check.resnet18_if_it_fits(check, 0.0, None)
    assert list(skipped) == ["skipped"] and "img/s" in skipped["skipped"]
