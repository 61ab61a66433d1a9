"""`make gpu-check`: the paper's headline on one GPU in minutes, with the science core alone (no MLflow, no
Snakemake, no torchvision), so that a bare GPU machine whose python3 has torch, pandas, scipy and PyYAML
runs it as it comes.

1. The fast proxy (config/proxy.yaml's network and recipe) on all of CIFAR-10: EL2N at epoch 1 averaged
   over 2 scoring runs; random against EL2N keep_max at 50% and 70% kept, 3 repeats paired on the init
   seed; full data 3 times (the "no loss" claim needs 3 repeats, as every verdict here).
2. If the time left allows: ResNet18 at full width on the gpu preset's schedule, random against EL2N
   keep_max at 50% kept, 3 repeats.
3. Prints and writes results/gpu-check.json: accuracies, paired differences with their one-sided 95%
   bounds and verdicts (the claims table's rules), training images/s and the fraction of the GPU's bf16
   peak it reached, and whether a training step ever waits for the GPU.

Each part first times its first scoring run and runs the rest only if its estimate (training, scoring and
evaluation) fits what is left of `--budget`. Training is compiled (once, on a warm-up run that is not
timed; eager, with one line saying so, where compiling fails). Without a GPU it says so and exits 0;
`--tiny` runs the same steps on a slice of the data on any device (the test of its plumbing).
On a machine without torchvision, `--data` takes the decoded file `make gpu-bundle` writes.

    PYTHONPATH=src python3 -m datadiet.tools.gpu_check --data ../shared/data/cifar10-jpeg.tar.gz
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

from .. import data, scores, selection, stats, verdicts
from ..models import init_model
from ..recipe import run_seeds, total_steps
from ..resume import fresh_state
from ..train import TTA_VIEWS, Sums, TrainConfig, TrainSet, evaluate, train, train_epoch

ROOT = Path(__file__).resolve().parents[3]
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
    """The runs of one network and recipe on one training set, timed: training apart from compiling (a
    warm-up compiles first) and from forward passes (scoring, test evaluation); EL2N taken at `score_epoch`."""

    def __init__(self, arch, width, cfg, score_epoch, train_set, test, device):
        self.arch, self.width, self.cfg, self.score_epoch, self.device = arch, width, cfg, score_epoch, device
        self.train_set, self.test = train_set, test
        self.images_seen, self.seconds = 0, 0.0  # training steps
        self.forwarded, self.forward_seconds = 0, 0.0  # scoring and evaluation
        self.compile_seconds = 0.0

    def model(self, run):
        return init_model(self.arch, 10, self.width, run_seeds(run)["model"]).to(self.device)

    def timed(self, work):
        """`work()` and the seconds it took, the GPU's queue drained at both ends."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = work()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return result, time.perf_counter() - start

    def warm_up(self):
        """Compile (where the recipe does) on a throwaway run of two steps, so that no timed run pays for it:
        later models of the same network reuse the compiled code."""
        if self.cfg.compile:
            two = torch.arange(2 * self.cfg.batch_size)
            _, self.compile_seconds = self.timed(lambda: self.trained(0, two, count=False))

    def trained(self, run, subset, stop_epoch=None, count=True):
        """A run on `subset` with the official seeds of `run` (`stop_epoch`: a scoring run cut there)."""
        cfg, n = self.cfg, len(self.train_set.labels)
        part = TrainSet(
            self.train_set.images[subset], self.train_set.labels[subset], self.train_set.mean, self.train_set.std
        )
        model, steps = self.model(run), total_steps(cfg, n, len(subset))
        _, seconds = self.timed(lambda: train(model, part, cfg, run_seeds(run)["data"], steps, stop_epoch=stop_epoch))
        if count:
            self.seconds += seconds
            self.images_seen += images_trained(cfg, len(subset), steps, stop_epoch)
        return model

    def forward(self, work, images):
        result, seconds = self.timed(work)
        self.forwarded, self.forward_seconds = self.forwarded + images, self.forward_seconds + seconds
        return result

    def accuracy(self, model):
        images, labels = self.test
        result = self.forward(
            lambda: evaluate(model, images, labels, self.train_set.mean, self.train_set.std, tta=self.cfg.tta),
            len(labels) * TTA_VIEWS[self.cfg.tta],
        )
        return 100 * result["accuracy"]

    def el2n_of_run(self, seed):
        """EL2N of scoring run `seed` (trained to `score_epoch`) on the whole training set."""
        everything = torch.arange(len(self.train_set.labels))
        model = self.trained(seed, everything, stop_epoch=self.score_epoch)
        images = data.normalize(self.train_set.images, self.train_set.mean, self.train_set.std, model.memory_format)
        return self.forward(lambda: scores.el2n(model, images, self.train_set.labels), len(everything))

    def curve(self, score, kept, repeats, full_repeats):
        """Test accuracy of random and EL2N keep_max at each kept fraction, and of full data: a runs table."""
        rows = []
        for run, method, keep, subset in planned_runs(len(self.train_set.labels), score, kept, repeats, full_repeats):
            rows.append((method, keep, run, self.accuracy(self.trained(run, subset))))
        return pd.DataFrame(rows, columns=["method", "keep", "run", "test_accuracy"]).assign(
            test_accuracy=lambda d: d.test_accuracy / 100
        )

    def seconds_for(self, trained, forwarded):
        """The time `trained` training images and `forwarded` forward passes take at the rates measured so far."""
        return trained * self.seconds / self.images_seen + forwarded * self.forward_seconds / self.forwarded

    def throughput(self, peak):
        rate = self.images_seen / self.seconds
        flops = flops_per_image(self.model(0), self.train_set, self.cfg)
        return {
            "train_img_s": round(rate),
            "flops_per_image": flops,
            "bf16_peak_fraction": None if peak is None else round(rate * flops / peak, 4),
            "compile_s": round(self.compile_seconds, 1),
        }


def images_trained(cfg, size, steps, stop_epoch=None):
    """Images a run on `size` examples trains on: `steps` steps, or those up to `stop_epoch`."""
    taken = steps if stop_epoch is None else min(steps, stop_epoch * (size // cfg.batch_size))
    return taken * cfg.batch_size


def planned_runs(n, score, kept, repeats, full_repeats):
    """(run, method, kept fraction, subset) of the headline's retraining runs, full data first in each repeat
    (`score` None: the subsets by the sizes alone, for an estimate)."""
    for run in range(max(repeats, full_repeats)):
        if run < full_repeats:
            yield run, "full", 1.0, torch.arange(n)
        seed = run_seeds(run)["subset"]
        for keep in kept if run < repeats else ():
            yield run, "random", keep, selection.random(n, keep, seed)
            yield (
                run,
                "el2n",
                keep,
                selection.random(n, keep, seed) if score is None else selection.keep_max(score, keep, seed),
            )


def headline_claims(runs, kept, arch, score_label):
    """The claims table's rows for the headline: EL2N keep_max against random and against full data."""
    rows = []
    for keep in kept:
        where = {"dataset": "cifar10", "arch": arch}
        beats = stats.paired(runs, "el2n", "random", keep=keep)
        rows.append(
            verdicts.superiority(
                f"{score_label} keep_max beats random ({keep:.0%} kept)", "gpu-check", "", beats, **where
            )
        )
        full = runs[runs.method == "full"]
        if full.empty:
            continue
        no_loss = stats.between(runs[(runs.method == "el2n") & (runs.keep == keep)], full)
        rows.append(
            verdicts.noninferiority(
                f"{score_label} keep_max loses nothing to full data ({keep:.0%} kept)",
                "gpu-check",
                "",
                no_loss,
                verdicts.MARGIN,
                **where,
            )
        )
    table = verdicts.family(rows, "gpu-check")
    columns = ["claim", "estimate", "ci_low", "ci_high", "n", "verdict", "reason", "p", "p_adjusted", "detectable"]
    return table[columns].to_dict("records")


def accuracies(runs):
    table = runs.assign(test_accuracy=lambda d: 100 * d.test_accuracy)
    return {f"{m} {k:g}": list(g.test_accuracy.round(2)) for (m, k), g in table.groupby(["method", "keep"])}


def headline(check, kept, repeats, full_repeats, peak, deadline):
    """EL2N from SCORE_SEEDS scoring runs, the runs of `check.curve`, their verdicts and throughput; skipped
    if, at the rates its first scoring run measures, the rest would end after `deadline` (perf_counter s)."""
    start = time.perf_counter()
    check.warm_up()
    first = check.el2n_of_run(0)
    needed = check.seconds_for(*remaining_work(check, kept, repeats, full_repeats))
    if time.perf_counter() + needed > deadline:
        left = deadline - time.perf_counter()
        rate = check.images_seen / check.seconds
        return {
            "skipped": f"its runs would take about {needed:.0f} s more at {rate:.0f} img/s; {max(left, 0):.0f} s left",
            "seconds": round(time.perf_counter() - start, 1),
        }
    score = torch.stack([first] + [check.el2n_of_run(seed) for seed in range(1, SCORE_SEEDS)]).mean(0)
    runs = check.curve(score, kept, repeats, full_repeats)
    label = f"EL2N@{check.score_epoch}"
    return {
        "network": f"{check.arch} width {check.width}",
        "recipe": {f.name: getattr(check.cfg, f.name) for f in fields(check.cfg)},
        "accuracy": accuracies(runs),
        "claims": headline_claims(runs, kept, check.arch, label),
        **check.throughput(peak),
        "seconds": round(time.perf_counter() - start, 1),
    }


def remaining_work(check, kept, repeats, full_repeats):
    """(training images, forward passes) of a headline after its first scoring run: the other scoring runs
    and their EL2N, then every retraining run and its test evaluation."""
    cfg, n = check.cfg, len(check.train_set.labels)
    trained = (SCORE_SEEDS - 1) * images_trained(cfg, n, total_steps(cfg, n, n), check.score_epoch)
    forwarded = (SCORE_SEEDS - 1) * n
    tested = len(check.test[1]) * TTA_VIEWS[cfg.tta]
    for _, _, _, subset in planned_runs(n, None, kept, repeats, full_repeats):
        trained += images_trained(cfg, len(subset), total_steps(cfg, n, len(subset)))
        forwarded += tested
    return trained, forwarded


def shrunk(cfg, tiny, eager):
    """The recipe, compiled unless `eager` (one process trains ~20 runs: compiling once pays here, where a
    cluster job of a few short runs would not), cut to a slice of the data for `--tiny` (the plumbing)."""
    cfg = replace(cfg, compile=not eager)
    return replace(cfg, epochs=2, batch_size=32) if tiny else cfg


def decoded(path):
    """CIFAR-10's splits: from the JPEG archive (torchvision decodes it, once: cached in results/cache), or
    from the decoded file that `--decode-to` writes (`make gpu-bundle`), which needs no torchvision."""
    if Path(path).suffix == ".pt":
        return data.load_decoded(Path(path))
    return data.load({"source": "jpeg_tar", "path": str(path), "name": "cifar10"}, ROOT / "results" / "cache")


def load(path, tiny, device):
    splits = decoded(path)
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
    parser.add_argument(
        "--data",
        default=str(ROOT.parent / "shared/data/cifar10-jpeg.tar.gz"),
        help="the CIFAR-10 JPEG archive, or the .pt that --decode-to wrote from it",
    )
    parser.add_argument("--out", default=str(ROOT / "results/gpu-check.json"))
    parser.add_argument(
        "--budget", type=float, default=420, help="seconds: each part runs only if its estimate fits what is left"
    )
    parser.add_argument("--tiny", action="store_true", help="the plumbing on a slice, on any device (tests)")
    parser.add_argument("--eager", action="store_true", help="no torch.compile (else compiled, eager if that fails)")
    parser.add_argument(
        "--decode-to", help="write the decoded --data archive here (a .pt) for a machine without torchvision"
    )
    args = parser.parse_args(argv)
    if args.decode_to:
        data.save_decoded(decoded(args.data), Path(args.decode_to))
        print(f"CIFAR-10 decoded to {args.decode_to}: `--data {args.decode_to}` needs no torchvision", flush=True)
        return 0
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
    deadline = began + args.budget
    report["proxy"] = headline(checks["proxy"], KEPT, REPEATS, FULL_REPEATS, peak, deadline)
    print(json.dumps(report["proxy"].get("claims", report["proxy"]), indent=1), flush=True)
    report["resnet18"] = headline(checks["resnet18"], (0.5,), REPEATS, 0, peak, deadline)
    report["seconds"] = round(time.perf_counter() - began, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1), f"\nwritten to {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
