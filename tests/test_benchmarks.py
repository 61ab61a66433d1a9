"""The benchmarks run and report every figure (on tiny inputs; speed itself is never asserted here)."""

import json
import math

import pandas as pd
import pytest
import torch

from benchmarks import dynamics, proxy, proxy_gap, scoring, startup
from benchmarks.common import Entry
from datadiet.data import Split
from datadiet.runtime import hardware


def test_entry_ratio_and_goal():
    faster = Entry("x_vs_y", 30.0, "img/s", 10.0, ">= 2")
    assert faster.ratio == 3.0 and faster.met() is True
    assert Entry("x_vs_y", 10.0, "img/s", 10.0, ">= 2").met() is False
    assert Entry("dry", 12.0, "s", None, "<= 10").met() is False and Entry("dry", 8.0, "s", None, "<= 10").met()
    assert Entry("study", None, "min", None, "<= 45").met() is None
    assert set(faster.as_json()) == {"name", "value", "unit", "baseline", "ratio", "goal", "met", "note"}


def test_scoring_and_dynamics_benchmarks_report_every_figure():
    torch.manual_seed(0)
    images, labels = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    entries = scoring.run(images, labels, width=4, batch=32) + dynamics.run(
        images, labels, width=4, block_size=2, barrier_examples=16
    )
    assert [e.name for e in entries] == [
        "grand_vs_train",
        "el2n_vs_train",
        "grand_vmap_vs_loop",
        "grand_layerwise_vs_loop",
        "ntk_velocity_vs_naive",
        "lmc_barrier_vs_naive",
    ]
    for e in entries:
        assert e.value > 0 and e.baseline > 0 and math.isfinite(e.ratio), e


def test_the_startup_benchmark_reads_each_job_s_first_step(tmp_path):
    (entry,) = startup.run(tmp_path, repeats=1)
    assert entry.name == "job_startup_s" and 0 < entry.value < 120 and entry.baseline > 0, entry


def test_the_proxy_benchmark_times_both_networks_through_our_loop():
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(64) % 10, [])
    entry, precision, epoch = proxy.run(
        split, torch.full((3,), 0.5), torch.full((3,), 0.25), torch.device("cpu"), 4, 32, 1
    )
    assert entry.name == "proxy_train_img_s_vs_resnet18" and entry.value > 0 and entry.baseline > 0, entry
    # bf16 against fp32 side by side; a goal only where bf16 pays (hardware.bf16_pays), met or not.
    assert precision.name == "bf16_vs_fp32_train" and precision.value > 0 and precision.baseline > 0, precision
    assert (precision.goal == ">= 1.5") == hardware.bf16_pays(torch.device("cpu"))
    auto = precision.value if hardware.bf16_pays(torch.device("cpu")) else precision.baseline
    assert epoch.name == "proxy_epoch_s" and epoch.value == pytest.approx(50_000 / auto)


@pytest.fixture(scope="module")
def cifar_slice():
    """512 training and 200 test images of real CIFAR-10, decoded."""
    from datadiet import data
    from paths import CIFAR, ROOT

    if not CIFAR.exists():
        pytest.skip("needs real CIFAR-10 (../shared/data)")
    splits = data.load({"source": "jpeg_tar", "path": str(CIFAR), "name": "cifar10"}, ROOT / "results" / "cache")
    pick = {"train": data.subset_per_class(splits["train"].labels, 52, 0)[:512], "test": torch.arange(0, 10_000, 50)}
    return {k: Split(splits[k].images[i], splits[k].labels[i], splits[k].classes) for k, i in pick.items()}


def test_the_proxy_gap_runs_airbench_s_own_code_on_our_tensors_on_the_cpu_and_leaves_torch_as_it_was(
    cifar_slice, tmp_path
):
    result = proxy_gap.run_airbench(cifar_slice, 0, tmp_path / "airbench", epochs=1, batch_size=128)
    assert result["epochs"] == 1 and result["train_seconds"] > 0
    assert sorted(result["accuracy"]) == [0, 1, 2] and all(0 <= a <= 1 for a in result["accuracy"].values())
    assert torch.nn.Linear(2, 2).half().weight.dtype == torch.float16  # its patches end with the block
    assert torch.load(tmp_path / "airbench" / "train.pt")["images"].shape == (512, 32, 32, 3)  # its layout


def test_the_proxy_gap_runs_ours_with_changes_to_a_preset_s_recipe(cifar_slice):
    changes = proxy_gap.changes(["epochs=1", "batch_size=128", "flip=alternate", "whiten_bias_epochs=null"])
    assert changes == {"epochs": 1, "batch_size": 128, "flip": "alternate", "whiten_bias_epochs": None}
    result = proxy_gap.run_ours(cifar_slice, 0, "proxy", changes)
    assert result["epochs"] == 1 and sorted(result["accuracy"]) == [0, 1, 2]
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        proxy_gap.changes(["flip"])


def test_the_proxy_gap_table_has_a_row_a_run_with_its_recipe_seed_and_accuracy_at_each_tta_level(tmp_path):
    common = {"epochs": 10, "train_seconds": 9.6, "threads": 1, "cpu": "x", "data": "d"}
    runs = {
        "a.json": {"impl": "airbench", "seed": 1, "accuracy": {"0": 0.1, "1": 0.2, "2": 0.3}, **common},
        "b.json": {"impl": "ours", "seed": 0, "recipe": "proxy", "changes": {"flip": "random"}, **common},
    }
    runs["b.json"]["accuracy"] = {"0": 0.4, "1": 0.5, "2": 0.6}
    for name, run in runs.items():
        (tmp_path / name).write_text(json.dumps(run))
    proxy_gap.main(
        ["table", "--runs", str(tmp_path / "b.json"), str(tmp_path / "a.json"), "--out", str(tmp_path / "t.csv")]
    )
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table.recipe) == ["airbench94 (its code)", "proxy flip=random"] and list(table.seed) == [1, 0]
    assert list(table.test_accuracy_tta2) == [0.3, 0.6] and list(table.train_seconds) == [10, 10]
