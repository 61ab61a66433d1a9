"""Why the proxy reaches ~90% on our CIFAR-10 where airbench94 reaches 94%: one full 10-epoch run,
either of airbench's own code (the `airbench` package on PyPI, KellerJordan's) on our tensors, or of
ours with a preset's recipe, scored at airbench's three test-time augmentation levels (0: the image,
1: and its mirror, 2: and both mirrored at two 1-pixel translations).

    .venv/bin/pip install airbench==0.1.8
    .venv/bin/python -m benchmarks.proxy_gap airbench --seed 0 --out results/proxy_gap/airbench-0.json
    .venv/bin/python -m benchmarks.proxy_gap ours --preset proxy --seed 0 --out results/proxy_gap/ours-0.json
    .venv/bin/python -m benchmarks.proxy_gap table --runs results/proxy_gap/*.json --out docs/proxy_gap.csv

Both read CIFAR-10 decoded (`make gpu-bundle` writes gpu-check/cifar10.pt; a study's data cache will do,
`--data`), train in float32 on the CPU (airbench trains in float16 on a GPU) and write {accuracy by TTA
level, seconds, CPU}; `--train KEY=VALUE` changes our recipe (`--train flip=random`).
"""

import argparse
import contextlib
import json
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pandas as pd
import torch
import yaml

from datadiet import data
from datadiet.models import init_model
from datadiet.recipe import run_seeds, total_steps
from datadiet.runtime import hardware
from datadiet.runtime.progress import PrintProgress
from datadiet.tools import gpu_check
from datadiet.train import TTA_VIEWS, Hooks, TrainSet, evaluate, train

TTA_SETTINGS = tuple(TTA_VIEWS)  # train.tta's names of airbench's levels 0, 1, 2, in that order
TTA_LEVELS = tuple(range(len(TTA_SETTINGS)))


@contextlib.contextmanager
def airbench_on_cpu(workdir):
    """airbench's module, run unchanged on the CPU in float32 while in the block: its CUDA timers,
    `.cuda()` and `.half()` become no-ops, and its loader reads `workdir`/{train,test}.pt onto the CPU."""
    try:
        import airbench
        from airbench import lib_airbench94, utils
    except ImportError:
        raise SystemExit("proxy_gap airbench needs its package: .venv/bin/pip install airbench==0.1.8") from None

    class Timer:  # torch.cuda.Event's interface, on the wall clock
        def record(self):
            self.t = time.perf_counter()

        def elapsed_time(self, end):
            return 1e3 * (end.t - self.t)

    class CpuLoader(utils.CifarLoader):
        def __init__(self, path, *args, gpu=0, **kwargs):
            super().__init__(str(workdir), *args, gpu="cpu", **kwargs)
            self.images = self.images.float()

    with contextlib.ExitStack() as stack:
        for target, name, value in [
            (torch.cuda, "Event", lambda enable_timing=True: Timer()),
            (torch.cuda, "synchronize", lambda: None),
            (torch.nn.Module, "cuda", lambda self, *a, **k: self),
            (torch.nn.Module, "half", lambda self: self),
            (utils, "CifarLoader", CpuLoader),  # train() builds its test loader from this name
        ]:
            stack.enter_context(mock.patch.object(target, name, value))
        yield airbench, lib_airbench94, CpuLoader


def write_airbench_files(splits, workdir):
    """Our splits in airbench's file layout: uint8 [N, H, W, C] images, labels, classes."""
    workdir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        s = splits[split]
        images = s.images.permute(0, 2, 3, 1).contiguous()
        torch.save({"images": images, "labels": s.labels, "classes": s.classes}, workdir / f"{split}.pt")


def run_airbench(splits, seed, workdir, epochs=None, batch_size=None):
    """airbench94's training (its hyperparameters; `epochs`, `batch_size`: instead of its own, for tests)."""
    write_airbench_files(splits, workdir)
    with airbench_on_cpu(workdir) as (airbench, lib94, loader):
        hyp = lib94.hyp["opt"]
        epochs, batch_size = epochs or hyp["train_epochs"], batch_size or hyp["batch_size"]
        torch.manual_seed(seed)  # airbench draws its init, order, flips and crops from torch's global generator
        train_loader = loader("", train=True, batch_size=batch_size, aug=lib94.hyp["aug"], altflip=True)
        start = time.perf_counter()
        model = lib94.train94(train_loader, epochs=epochs)
        seconds = time.perf_counter() - start
        test_loader = loader("", train=False, batch_size=2000)
        accuracy = {level: airbench.evaluate(model, test_loader, tta_level=level) for level in TTA_LEVELS}
    return {"epochs": epochs, "accuracy": accuracy, "train_seconds": seconds}


def run_ours(splits, seed, preset, changes):
    """Our proxy with `preset`'s recipe (config/<preset>.yaml over config.yaml) and `changes` to it
    ({train key: value}), seeded as study run `seed`."""
    arch, width, cfg, _ = gpu_check.preset(preset)
    cfg = replace(cfg, **changes)
    train_split, test_split = splits["train"], splits["test"]
    mean, std = data.channel_stats(train_split.images)
    train_set = TrainSet(train_split.images, train_split.labels, mean, std)
    seeds, n = run_seeds(seed), len(train_split.labels)
    model = init_model(arch, 10, width, seeds["model"])
    start = time.perf_counter()
    steps = total_steps(cfg, n, n)
    progress = PrintProgress(cfg.epochs, steps, cfg.batch_size, n // cfg.batch_size)  # a line an epoch
    train(model, train_set, cfg, seeds["data"], steps, Hooks((progress,)))
    seconds = time.perf_counter() - start
    test = (test_split.images, test_split.labels)
    tta = dict(zip(TTA_LEVELS, TTA_SETTINGS))
    accuracy = {level: evaluate(model, *test, mean, std, tta=tta[level])["accuracy"] for level in TTA_LEVELS}
    return {"epochs": cfg.epochs, "recipe": preset, "changes": changes, "accuracy": accuracy, "train_seconds": seconds}


def changes(pairs):
    """{key: value} from KEY=VALUE strings, each value read as YAML (null, 3, alternate)."""
    try:
        return {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in pairs)}
    except ValueError:
        raise SystemExit(f"--train takes KEY=VALUE, got {pairs}") from None


def table(runs):
    """One row a run: what trained, its seed and its test accuracy at each TTA level (from their JSON files)."""
    rows = []
    for path in runs:
        run = json.loads(Path(path).read_text())
        recipe = "airbench94 (its code)" if run["impl"] == "airbench" else run["recipe"]
        changed = "".join(f" {k}={v}" for k, v in run.get("changes", {}).items())
        accuracy = {f"test_accuracy_tta{level}": run["accuracy"][str(level)] for level in TTA_LEVELS}
        rows.append({"impl": run["impl"], "recipe": recipe + changed, "seed": run["seed"], "epochs": run["epochs"]})
        rows[-1].update(accuracy, train_seconds=round(run["train_seconds"]), threads=run["threads"], cpu=run["cpu"])
    return pd.DataFrame(rows).sort_values(["impl", "recipe", "seed"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("impl", choices=["airbench", "ours", "table"], help="table: the --runs' JSON files as CSV")
    parser.add_argument("--runs", nargs="+", default=[], help="table: the JSON files of runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="proxy", help="ours: config/<preset>.yaml's train: recipe")
    parser.add_argument(
        "--train", action="append", default=[], metavar="KEY=VALUE", help="ours: a change to the recipe (YAML value)"
    )
    parser.add_argument("--data", default="gpu-check/cifar10.pt", help="decoded CIFAR-10 (`make gpu-bundle`)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.impl == "table":
        table(args.runs).to_csv(args.out, index=False)
        return
    torch.set_num_threads(args.threads)
    hardware.keep_freed_memory()
    path = Path(args.data)
    if not path.exists():
        raise SystemExit(f"no decoded CIFAR-10 at {path}: `make gpu-bundle` writes it (or name one with --data)")
    splits = data.load_decoded(path)
    out = Path(args.out)
    if args.impl == "airbench":
        result = run_airbench(splits, args.seed, out.parent / f"{out.stem}.data")
    else:
        result = run_ours(splits, args.seed, args.preset, changes(args.train))
    result.update(impl=args.impl, seed=args.seed, data=str(path), threads=args.threads, cpu=hardware.cpu_name())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
