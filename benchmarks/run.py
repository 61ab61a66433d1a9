"""`make bench`: every speed figure of the project, each a ratio measured side by side in this run
(or a value with its goal), printed as a table and written to results/bench.json.

    python -m benchmarks.run [--data ../shared/data/cifar10-jpeg.tar.gz] [--only scoring,pipeline,...]
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch

from benchmarks import dynamics, gpu, pipeline, proxy, scoring, startup, workflow
from datadiet import data
from datadiet.runtime import hardware

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("pipeline", "scoring", "dynamics", "startup", "workflow", "proxy", "gpu")  # gpu: skipped without one


def table(entries):
    lines = [f"{'name':<38} {'value':>10} {'unit':<10} {'baseline':>10} {'ratio':>7}  goal     met"]
    for e in entries:
        value = "-" if e.value is None else f"{e.value:.4g}"
        baseline = "-" if e.baseline is None else f"{e.baseline:.4g}"
        ratio = "-" if e.ratio is None else f"{e.ratio:.2f}"
        met = {True: "yes", False: "NO", None: ""}[e.met()]
        lines.append(f"{e.name:<38} {value:>10} {e.unit:<10} {baseline:>10} {ratio:>7}  {e.goal:<8} {met}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        default=str(ROOT.parent / "shared/data/cifar10-jpeg.tar.gz"),
        help="the CIFAR-10 JPEG archive (see ../shared/data/README.md)",
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--out", default=str(ROOT / "results/bench.json"))
    args = parser.parse_args(argv)
    sections = args.only.split(",")
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    if not Path(args.data).is_file():
        parser.error(f"{args.data} not found: pass --data PATH to the CIFAR-10 JPEG archive")
    torch.set_num_threads(os.cpu_count() or 1)
    hardware.keep_freed_memory()  # as every job of the study does
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = pipeline.extract_folder(args.data, Path(tmp) / "folder", per_class=256)
        train = data.load({"source": "imagefolder", "path": str(folder)}, Path(tmp) / "cache")["train"]
        mean, std = data.channel_stats(train.images)
        images = data.normalize(train.images, mean, std, torch.contiguous_format)
        runs = {
            "pipeline": lambda: pipeline.run(folder, tmp),
            "scoring": lambda: (
                scoring.run(images[:512], train.labels[:512], width=16)
                + scoring.run(images[:256], train.labels[:256], width=64, suffix="_w64")
            ),
            "dynamics": lambda: dynamics.run(images, train.labels),
            "startup": lambda: startup.run(Path(tmp) / "startup"),
            "workflow": lambda: workflow.run(tmp),
            "proxy": lambda: proxy.run(train, mean, std, torch.device("cuda" if torch.cuda.is_available() else "cpu")),
            "gpu": lambda: gpu.run(folder, train),
        }
        for section in sections:
            if section == "gpu" and not torch.cuda.is_available():
                print("== gpu: skipped, torch sees no GPU here")
                continue
            print(f"== {section}", flush=True)
            new = runs[section]()
            print(table(new), flush=True)
            entries += new
    print("\n" + table(entries))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps([e.as_json() for e in entries], indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
