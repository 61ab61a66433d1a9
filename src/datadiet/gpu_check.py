"""`make gpu-check`: the paper's headline on one GPU in minutes, with the science core alone (no MLflow, no
Snakemake), so that a bare GPU machine whose python3 has torch, pandas and scipy runs it as it comes.

1. The fast proxy (config/proxy.yaml's network and recipe) on all of CIFAR-10: EL2N at epoch 1 averaged
   over 2 scoring runs; random against EL2N keep_max at 50% and 70% kept, 3 repeats paired on the init
   seed; full data 3 times (the "no loss" claim needs 3 repeats, as every verdict here).
2. If the time left allows: ResNet18 at full width on the gpu preset's schedule, random against EL2N
   keep_max at 50% kept, 3 repeats.
3. Prints and writes results/gpu-check.json: accuracies, paired differences with their one-sided 95%
   bounds and verdicts (the claims table's rules), training images/s and the fraction of the GPU's bf16
   peak it reached, and whether a training step ever waits for the GPU.

Without a GPU it says so and exits 0; `--tiny` runs the same steps on a slice of the data on any device
(the test of its plumbing).

    PYTHONPATH=src python3 -m datadiet.gpu_check --data ../shared/data/cifar10-jpeg.tar.gz
"""

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from . import claims, data, scores, selection
from .train import (
    Sums,
    TrainConfig,
    TrainSet,
    evaluate,
    fresh_state,
    init_model,
    run_seeds,
    total_steps,
    train,
    train_epoch,
)

ROOT = Path(__file__).resolve().parents[2]
# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, by a part of the device name.
BF16_PEAK = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}
KEPT = (0.5, 0.7)
REPEATS, FULL_REPEATS, SCORE_SEEDS = 3, 3, 2


def preset(name):
    """config.yaml's model and train sections with the preset's merged over them."""
    import yaml  # the bundle carries PyYAML where the machine has none (make gpu-bundle)

    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    over = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    train = {k: v for k, v in {**base["train"], **over["train"]}.items() if k in {f.name for f in fields(TrainConfig)}}
    score = over["scores"]["el2n_epochs"][0]
    return over["datasets"]["cifar10"].get("arch", "resnet18"), over["model"]["width"], TrainConfig(**train), score


def bf16_peak(device):
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for part, peak in BF16_PEAK.items() if part in name), None)


def flops_per_image(model, train_set, cfg):
    """FLOPs of one training step (forward and backward) per image, counted by torch."""
    x = data.normalize(train_set.images[: cfg.batch_size], train_set.mean, train_set.std, model.memory_format)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), train_set.labels[: cfg.batch_size]).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def steps_without_a_sync(model, train_set, cfg, steps):
    """Train `steps` steps (after one warm-up step) with CUDA's sync debug mode at "error": the steps
    taken, or the first host synchronisation's error."""
    state = fresh_state(model, cfg, steps + 1, 0, {})
    sums = Sums(train_set.images.device)
    train_epoch(state, model, train_set, cfg, 1, True, sums)  # cuDNN picks its kernels once
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_epoch(state, model, train_set, cfg, steps + 1, True, sums)
    except RuntimeError as error:
        return str(error).splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return state.step - 1


class Check:
    """The runs of one network and recipe on one training set, timed; EL2N taken at `score_epoch`."""

    def __init__(self, arch, width, cfg, score_epoch, train_set, test, device):
        self.arch, self.width, self.cfg, self.score_epoch, self.device = arch, width, cfg, score_epoch, device
        self.train_set, self.test = train_set, test
        self.images_seen, self.seconds = 0, 0.0

    def model(self, run):
        return init_model(self.arch, 10, self.width, run_seeds(run)["model"]).to(self.device)

    def trained(self, run, subset, stop_epoch=None):
        """A run on `subset` with the official seeds of `run` (`stop_epoch`: a scoring run cut there)."""
        cfg, n = self.cfg, len(self.train_set.labels)
        part = TrainSet(
            self.train_set.images[subset], self.train_set.labels[subset], self.train_set.mean, self.train_set.std
        )
        model, steps = self.model(run), total_steps(cfg, n, len(subset))
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train(model, part, cfg, run_seeds(run)["data"], steps, stop_epoch=stop_epoch)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - start
        taken = steps if stop_epoch is None else min(steps, stop_epoch * (len(subset) // cfg.batch_size))
        self.images_seen += taken * cfg.batch_size
        return model

    def accuracy(self, model):
        return 100 * evaluate(model, *self.test, self.train_set.mean, self.train_set.std, tta=self.cfg.tta)["accuracy"]

    def el2n(self, epoch, seeds):
        """EL2N at `epoch`, averaged over scoring runs 0..seeds-1 on the whole training set."""
        everything = torch.arange(len(self.train_set.labels))
        images = data.normalize(self.train_set.images, self.train_set.mean, self.train_set.std)
        runs = [self.trained(seed, everything, stop_epoch=epoch) for seed in range(seeds)]
        return torch.stack(
            [scores.el2n(m, images.contiguous(memory_format=m.memory_format), self.train_set.labels) for m in runs]
        ).mean(0)

    def curve(self, score, kept, repeats, full_repeats):
        """Test accuracy of random and EL2N keep_max at each kept fraction, and of full data: a runs table."""
        n, rows = len(self.train_set.labels), []
        for run in range(max(repeats, full_repeats)):
            seed = run_seeds(run)["subset"]
            if run < full_repeats:
                rows.append(("full", 1.0, run, self.accuracy(self.trained(run, torch.arange(n)))))
            for keep in kept if run < repeats else ():
                for method, chosen in (
                    ("random", selection.random(n, keep, seed)),
                    ("el2n", selection.keep_max(score, keep, seed)),
                ):
                    rows.append((method, keep, run, self.accuracy(self.trained(run, chosen))))
        return pd.DataFrame(rows, columns=["method", "keep", "run", "test_accuracy"]).assign(
            test_accuracy=lambda d: d.test_accuracy / 100
        )

    def throughput(self, peak):
        rate = self.images_seen / self.seconds
        flops = flops_per_image(self.model(0), self.train_set, self.cfg)
        return {
            "train_img_s": round(rate),
            "flops_per_image": flops,
            "bf16_peak_fraction": None if peak is None else round(rate * flops / peak, 4),
        }


def verdicts(runs, kept, arch, score_label):
    """The claims table's rows for the headline: EL2N keep_max against random and against full data."""
    rows = []
    for keep in kept:
        how = {"dataset": "cifar10", "arch": arch}
        beats = claims.paired(runs, "el2n", "random", keep=keep)
        rows.append(
            claims.superiority(f"{score_label} keep_max beats random ({keep:.0%} kept)", "gpu-check", "", beats, **how)
        )
        full = runs[runs.method == "full"]
        if full.empty:
            continue
        no_loss = claims.between(runs[(runs.method == "el2n") & (runs.keep == keep)], full)
        rows.append(
            claims.noninferiority(
                f"{score_label} keep_max loses nothing to full data ({keep:.0%} kept)",
                "gpu-check",
                "",
                no_loss,
                claims.MARGIN,
                **how,
            )
        )
    return [{k: r[k] for k in ("claim", "estimate", "ci_low", "ci_high", "n", "verdict", "reason")} for r in rows]


def accuracies(runs):
    table = runs.assign(test_accuracy=lambda d: 100 * d.test_accuracy)
    return {f"{m} {k:g}": list(g.test_accuracy.round(2)) for (m, k), g in table.groupby(["method", "keep"])}


def headline(check, kept, repeats, full_repeats, peak):
    """EL2N from SCORE_SEEDS scoring runs, the runs of `check.curve`, their verdicts and throughput."""
    start = time.perf_counter()
    runs = check.curve(check.el2n(check.score_epoch, SCORE_SEEDS), kept, repeats, full_repeats)
    label = f"EL2N@{check.score_epoch}"
    return {
        "network": f"{check.arch} width {check.width}",
        "recipe": {f.name: getattr(check.cfg, f.name) for f in fields(check.cfg)},
        "accuracy": accuracies(runs),
        "claims": verdicts(runs, kept, check.arch, label),
        **check.throughput(peak),
        "seconds": round(time.perf_counter() - start, 1),
    }


def shrunk(cfg, tiny, eager):
    """The recipe, cut to a slice of the data for `--tiny` (the plumbing, not the science); `eager`: not compiled."""
    cfg = replace(cfg, compile=cfg.compile and not eager)
    return replace(cfg, epochs=2, batch_size=32, compile=False) if tiny else cfg


def load(archive, tiny, device):
    splits = data.load({"source": "jpeg_tar", "path": str(archive), "name": "cifar10"}, ROOT / "results" / "cache")
    train_split, test_split = splits["train"], splits["test"]
    if tiny:
        train_split = replace(train_split, **_slice(train_split, data.subset_per_class(train_split.labels, 20, 0)))
        test_split = replace(test_split, **_slice(test_split, data.subset_per_class(test_split.labels, 10, 0)))
    mean, std = data.channel_stats(train_split.images)
    on = TrainSet(*(t.to(device) for t in (train_split.images, train_split.labels, mean, std)))
    return on, (test_split.images.to(device), test_split.labels.to(device))


def _slice(split, indices):
    return {"images": split.images[indices], "labels": split.labels[indices]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/cifar10-jpeg.tar.gz"))
    parser.add_argument("--out", default=str(ROOT / "results/gpu-check.json"))
    parser.add_argument("--budget", type=float, default=420, help="seconds: ResNet18 runs only if it fits")
    parser.add_argument("--tiny", action="store_true", help="the plumbing on a slice, on any device (tests)")
    parser.add_argument("--eager", action="store_true", help="no torch.compile, whatever the presets say")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.tiny:
        print("gpu-check needs a GPU (torch sees none here): nothing to do", flush=True)
        return 0
    if not Path(args.data).is_file():
        parser.error(f"{args.data} not found: pass --data PATH to the CIFAR-10 JPEG archive")
    began = time.perf_counter()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    train_set, test = load(args.data, args.tiny, device)
    peak = bf16_peak(device)
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "bf16_peak_flops": peak,
        "tiny": args.tiny,
    }
    checks = {}
    for name, preset_name in (("proxy", "proxy"), ("resnet18", "gpu")):
        arch, width, cfg, score_epoch = preset(preset_name)
        width = 4 if args.tiny else width
        checks[name] = Check(arch, width, shrunk(cfg, args.tiny, args.eager), score_epoch, train_set, test, device)
    if device.type == "cuda":
        report["sync_free_steps"] = steps_without_a_sync(
            checks["resnet18"].model(0), train_set, checks["resnet18"].cfg, 20
        )
    report["proxy"] = headline(checks["proxy"], KEPT, REPEATS, FULL_REPEATS, peak)
    print(json.dumps(report["proxy"]["claims"], indent=1), flush=True)
    left = args.budget - (time.perf_counter() - began)
    report["resnet18"] = resnet18_if_it_fits(checks["resnet18"], left, peak)
    report["seconds"] = round(time.perf_counter() - began, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1), f"\nwritten to {args.out}", flush=True)
    return 0


def resnet18_if_it_fits(check, left, peak):
    """Part 2, when its runs, timed from a short burst of steps, fit in the `left` seconds."""
    n, cfg = len(check.train_set.labels), check.cfg
    probe = check.trained(0, torch.arange(n), stop_epoch=1)
    rate = check.images_seen / check.seconds
    del probe
    images = (SCORE_SEEDS * check.score_epoch + 2 * REPEATS * cfg.epochs) * n
    needed = images / rate
    if needed > left:
        return {"skipped": f"its runs would take about {needed:.0f} s at {rate:.0f} img/s; {left:.0f} s were left"}
    return headline(check, (0.5,), REPEATS, 0, peak)


if __name__ == "__main__":
    sys.exit(main())
