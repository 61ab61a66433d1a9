"""Training speed through our loop, images/s: the fast proxy (config/proxy.yaml's network and recipe)
against ResNet18 at full width (the gpu preset's), on the same images. On a GPU each rate is also set
against the card's bf16 peak (the rate at which one training step per image would use all of it), and
the proxy's whole 10-epoch run on CIFAR-10's 50,000 images is timed from its rate."""

from dataclasses import replace

import torch

from benchmarks.common import Entry, rates
from datadiet.models import init_model
from datadiet.runtime import hardware
from datadiet.tools import gpu_check
from datadiet.train import TrainSet, train

CIFAR10_TRAIN = 50_000


def trainer(preset, train_set, device, width=None, batch=None, precision=None):
    """(one pass of the preset's network and recipe over `train_set`, the images it trains on, its FLOPs an image);
    `precision`: instead of the preset's."""
    arch, preset_width, cfg, _ = gpu_check.preset(preset)
    # Compiling pays on a GPU only, in a process of many runs (gpu_check).
    cfg = replace(cfg, batch_size=batch or cfg.batch_size, compile=device.type == "cuda")
    cfg = replace(cfg, precision=precision or cfg.precision)
    model = init_model(arch, 10, width or preset_width, 0).to(device)
    steps = len(train_set.labels) // cfg.batch_size
    flops = gpu_check.flops_per_image(model, train_set, cfg)

    def one_pass():
        train(model, train_set, cfg, 0, steps)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return one_pass, steps * cfg.batch_size, flops


def run(train_split, mean, std, device, width=None, batch=None, repeats=3):
    """`width`/`batch`: both networks cut down (the tests'); by default the presets' own."""
    train_set = TrainSet(*(t.to(device) for t in (train_split.images, train_split.labels, mean, std)))
    proxy, proxy_images, proxy_flops = trainer("proxy", train_set, device, width, batch)
    resnet, resnet_images, resnet_flops = trainer("gpu", train_set, device, width, batch)
    measured = {
        **rates({"proxy": proxy}, proxy_images, repeats=repeats),
        **rates({"resnet18": resnet}, resnet_images, repeats=repeats),
    }
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    entries = [
        Entry(
            "proxy_train_img_s_vs_resnet18",
            measured["proxy"],
            "img/s",
            measured["resnet18"],
            "",
            f"{where}: airbench (its recipe's batch) vs ResNet18 width 64 (batch 128), {len(train_set.labels)} images",
        )
    ]
    peak = gpu_check.bf16_peak(device)
    if peak is None:
        return entries + precisions(train_set, device, width, batch, repeats)
    return entries + [
        Entry("gpu_train_img_s", measured["resnet18"], "img/s", peak / resnet_flops, ">= 0.25",
              f"{where}: ResNet18 width 64, batch 128; the baseline is the bf16 peak's rate, the ratio its fraction"),
        Entry("gpu_proxy_train_img_s", measured["proxy"], "img/s", peak / proxy_flops, "",
              f"{where}: airbench; the baseline is the bf16 peak's rate, the ratio its fraction"),
        Entry("gpu_proxy_10_epochs_s", 10 * CIFAR10_TRAIN / measured["proxy"], "s", None, "<= 10",
              f"{where}: the proxy's 10 epochs on 50,000 images at the rate measured (compiling not counted)"),
    ]  # fmt: skip


def precisions(train_set, device, width, batch, repeats):
    """The proxy's training rate in bf16 autocast against fp32, side by side, and its epoch on all of CIFAR-10
    at the precision `auto` picks here (the headline preset's)."""
    runs = {name: trainer("proxy", train_set, device, width, batch, precision=name) for name in ("bf16", "fp32")}
    measured = rates({name: one_pass for name, (one_pass, _, _) in runs.items()}, runs["fp32"][1], repeats=repeats)
    pays = hardware.bf16_pays(device)
    auto = "bf16" if pays else "fp32"
    return [
        Entry(
            "bf16_vs_fp32_train",
            measured["bf16"],
            "img/s",
            measured["fp32"],
            ">= 1.5" if pays else "",
            f"{hardware.cpu_name()}: the proxy's step under bf16 autocast vs fp32"
            + ("" if pays else "; no goal: bf16 does not pay on this CPU (Intel without AMX), auto trains fp32"),
        ),
        Entry(
            "proxy_epoch_s",
            CIFAR10_TRAIN / measured[auto],
            "s",
            None,
            "",
            f"{hardware.cpu_name()}: one epoch of the proxy on 50,000 images in {auto} (train.precision auto)",
        ),
    ]
