"""train.precision: bf16 autocast does not change the science. On real CIFAR-10 images, a short proxy run in
bf16 ends as accurate as in fp32 within the seed-to-seed spread, and its EL2N ranks the examples as an fp32
run of the same seed does, no further apart than two fp32 seeds; a checkpoint's EL2N in bf16 arithmetic
ranks them as its fp32 EL2N does. And `auto` picks bf16 only where it pays."""

from dataclasses import replace

import pytest
import torch
from scipy.stats import spearmanr

from datadiet import data, scores
from datadiet.models import init_model
from datadiet.recipe import run_seeds, total_steps
from datadiet.runtime import hardware
from datadiet.tools import gpu_check
from datadiet.train import TrainSet, evaluate, train
from paths import CIFAR, ROOT

# The proxy's recipe (config/proxy.yaml), shorter: 3 epochs of 2,500 images (the network 16 wide).
RECIPE = replace(gpu_check.preset("proxy")[2], epochs=3, batch_size=250, tta=False)
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def cifar():
    if not CIFAR.exists():
        pytest.skip("trains on real CIFAR-10 images (../shared/data)")
    splits = data.load({"source": "jpeg_tar", "path": str(CIFAR), "name": "cifar10"}, ROOT / "results" / "cache")
    train_split, test_split = splits["train"], splits["test"]
    chosen, tested = data.subset_per_class(train_split.labels, 250, 0), data.subset_per_class(test_split.labels, 200, 0)
    mean, std = data.channel_stats(train_split.images[chosen])
    train_set = TrainSet(train_split.images[chosen], train_split.labels[chosen], mean, std)
    return train_set, (test_split.images[tested], test_split.labels[tested])


@pytest.fixture(scope="module")
def runs(cifar):
    """{(precision, seed): (test accuracy, EL2N of the trained run, model)}."""
    torch.set_num_threads(2)
    train_set, test = cifar
    images = data.normalize(train_set.images, train_set.mean, train_set.std)
    made = {}
    for precision in ("fp32", "bf16"):
        for seed in SEEDS:
            cfg = replace(RECIPE, precision=precision)
            model = init_model("airbench", 10, 16, run_seeds(seed)["model"])
            n = len(train_set.labels)
            train(model, train_set, cfg, run_seeds(seed)["data"], total_steps(cfg, n, n))
            accuracy = evaluate(model, *test, train_set.mean, train_set.std)["accuracy"]
            el2n = scores.el2n(model, images.contiguous(memory_format=model.memory_format), train_set.labels)
            made[precision, seed] = (100 * accuracy, el2n, model)
    return made


def test_a_bf16_run_is_as_accurate_as_fp32_within_the_seed_to_seed_spread(runs):
    fp32 = torch.tensor([runs["fp32", s][0] for s in SEEDS])
    bf16 = torch.tensor([runs["bf16", s][0] for s in SEEDS])
    assert fp32.min() > 40  # it learned: 10 classes, chance is 10%
    spread = float(fp32.max() - fp32.min())
    print(f"test accuracy %: fp32 {fp32.tolist()}, bf16 {bf16.tolist()}")
    assert abs(float(bf16.mean() - fp32.mean())) <= max(spread, 1.0), (fp32.tolist(), bf16.tolist())


def test_bf16_training_ranks_examples_by_el2n_as_an_fp32_run_of_the_same_seed(runs):
    between_precisions = [spearmanr(runs["fp32", s][1], runs["bf16", s][1]).statistic for s in SEEDS]
    between_seeds = [spearmanr(runs["fp32", a][1], runs["fp32", b][1]).statistic for a, b in zip(SEEDS, SEEDS[1:])]
    print(f"EL2N Spearman: fp32 vs bf16 of a seed {between_precisions}, fp32 seed vs seed {between_seeds}")
    assert min(between_precisions) > 0.5 and min(between_seeds) > 0.5
    assert sum(between_precisions) / len(SEEDS) >= sum(between_seeds) / len(between_seeds) - 0.05


def test_a_checkpoint_scored_in_bf16_ranks_examples_as_in_fp32(cifar, runs):
    train_set, _ = cifar
    model = runs["fp32", 0][2]
    images = data.normalize(train_set.images, train_set.mean, train_set.std, model.memory_format)
    with torch.autocast("cpu", torch.bfloat16):
        in_bf16 = scores.el2n(model, images, train_set.labels)
    rho = spearmanr(runs["fp32", 0][1], in_bf16).statistic
    print(f"EL2N of one checkpoint, fp32 vs bf16 arithmetic: Spearman {rho:.4f}")
    assert rho > 0.99


@pytest.mark.parametrize(
    "flags, vendor, pays",
    [
        ({"avx512f", "avx512_bf16", "amx_bf16"}, "GenuineIntel", True),  # Sapphire Rapids and later
        ({"avx512f", "avx512_bf16"}, "GenuineIntel", False),  # bf16 convolutions at 0.62x fp32 (measured)
        ({"avx512f", "avx512_bf16"}, "AuthenticAMD", True),  # EPYC (Zen 4): the proxy's step 1.9x
        ({"avx2"}, "AuthenticAMD", False),
    ],
)
def test_auto_trains_in_bf16_only_where_it_pays(flags, vendor, pays):
    assert hardware.bf16_pays(torch.device("cpu"), flags, vendor) is pays
    assert hardware.autocast_bf16("bf16", torch.device("cpu")) and not hardware.autocast_bf16(
        "fp32", torch.device("cpu")
    )
    with pytest.raises(ValueError, match="precision must be one of"):
        hardware.autocast_bf16("fp16", torch.device("cpu"))
