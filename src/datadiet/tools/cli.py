"""`datadiet`: the user's tools (prune, scores, estimate, mlflow-server) and, under `datadiet job`, the
study's job steps the workflow's rules run. Only argument parsing lives here: each command is a function
elsewhere, imported when it runs (so a command that tracks nothing never imports MLflow).
"""

import argparse
import importlib
import json
import os
import sys

from .. import data, models
from ..study.jobs import HELP, JOBS
from . import prune

DEVICES = ("auto", "cpu", "cuda")  # auto: the GPU if torch sees one


def tool(sub, name, function, help):
    p = sub.add_parser(name, help=help)
    p.set_defaults(module="datadiet.tools.commands", function=function)
    return p


def add_job(jobs, name):
    module, tracked, options = JOBS[name]
    p = jobs.add_parser(name, help=HELP[name])
    p.set_defaults(module=f"datadiet.study.jobs.{module}", function=name.replace("-", "_"))
    if tracked:
        p.add_argument("--spec", required=True, type=json.loads, help="the job's parameters as JSON")
        p.add_argument("--rule", default="manual", help="workflow rule (an MLflow tag)")
        p.add_argument("--wildcards", default={}, type=json.loads, help="the rule's wildcards as JSON (MLflow tags)")
        p.add_argument("--tracked", required=True, help="the MLflow store's marker (init-tracking's --out)")
        p.add_argument("--threads", type=int, default=1, help="CPU threads")
        p.add_argument("--device", choices=DEVICES, default="auto", help="auto: the GPU if torch sees one")
        p.set_defaults(ends_job=True)  # a job of several runs ends with its last (jobs.each_run)
    for option in options.split():
        flag, many = option.rstrip("+*?"), option[-1]
        nargs = {"+": "+", "*": "*"}.get(many)
        p.add_argument(flag, required=many not in "*?", nargs=nargs, default=[] if many == "*" else None)


def parser():
    main = argparse.ArgumentParser(prog="datadiet", description="Deep Learning on a Data Diet: score, prune, study.")
    sub = main.add_subparsers(dest="command", required=True)
    p = tool(sub, "estimate", "estimate", "jobs and GPU-hours per experiment of a config (no job runs)")
    p.add_argument("--configfile", default="config.yaml")
    p.add_argument("more_configfiles", nargs="*", help="more config files merged over it")
    p = tool(sub, "mlflow-server", "mlflow_server", "the MLflow tracking server for jobs on a cluster")
    p.add_argument("--store", default="results/mlflow-server", help="folder of its database and artifacts")
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept jobs from other nodes")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--backend-uri", help="a database URI (e.g. postgresql://...) instead of SQLite in --store")
    add_prune_tools(sub)
    jobs = sub.add_parser("job", help="a step of the study's workflow (its rules run these)")
    steps = jobs.add_subparsers(dest="job", required=True, metavar="STEP")
    for name in JOBS:
        add_job(steps, name)
    return main


def add_prune_tools(sub):
    p = tool(sub, "prune", "run_prune", "score your own ImageFolder of images and keep the hardest (or another) part")
    p.add_argument(
        "--data",
        required=True,
        help="an ImageFolder tree: one subfolder of images per class, "
        "at least 2 classes, any image size, jpg/png/... (subfolders of a class folder count)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="folder for scores.csv, keep.txt, prune.json, models/ (each scoring run's model) and the MLflow store",
    )
    p.add_argument("--keep", type=float, default=0.5, help="fraction of the images kept, in (0, 1] (default 0.5)")
    p.add_argument("--score", default="el2n", help=f"{', '.join(prune.SCORES)} (default el2n; higher = harder)")
    p.add_argument(
        "--score-epoch",
        type=int,
        help=f"{', '.join(prune.AT_EPOCH)}: the epoch the score is taken at (0 = at "
        "init; default the paper's, a tenth of --epochs, at least 1); the runs stop there",
    )
    p.add_argument(
        "--method",
        default="keep_max",
        help=f"{', '.join(prune.METHODS)} (default keep_max: keep "
        "the hardest, the paper's; keep_min when data is scarce)",
    )
    p.add_argument("--ccs-beta", type=float, default=0.1, help="ccs: hardest fraction dropped first (default 0.1)")
    p.add_argument("--ccs-strata", type=int, default=50, help="ccs: score strata (default 50)")
    p.add_argument(
        "--window-left-out",
        type=float,
        help="window: the share of the set left out above the window (harder than it), 0 = the "
        "hardest window, 1 - keep = the easiest (required with --method window)",
    )
    p.add_argument(
        "--selection-seed",
        type=int,
        default=0,
        help="seed of the selection: random and ccs draw with it, the others order equal scores by it (default 0)",
    )
    p.add_argument(
        "--never-learned",
        choices=["inf", "max"],
        default="inf",
        help="forgetting score of never-learned images (default inf, the official code's)",
    )
    add_prune_training(p)
    add_prune_output(p)
    p = tool(
        sub, "scores", "show_scores", "summarise a prune scores.csv per class and draw its hardest and easiest images"
    )
    p.add_argument("path", help="a scores.csv written by datadiet prune, or its folder")
    p.add_argument("--top", type=int, default=10, help="hardest images listed (default 10)")
    p.add_argument("--figure", help="the figure's path (default scores_grid.png next to the csv)")
    p.add_argument("--grid", type=int, default=8, help="images per row of the figure, hardest and easiest (default 8)")


def add_prune_training(p):
    """How `datadiet prune` trains its scoring runs and reads the images."""
    p.add_argument("--seeds", type=int, default=2, help="scoring runs averaged (default 2; the paper: 10)")
    p.add_argument(
        "--epochs",
        type=int,
        default=20,
        help="length of a scoring run's schedule in epochs (default 20); forgetting and aum train all of it",
    )
    p.add_argument("--arch", choices=sorted(models.ARCHS), default="resnet18")
    p.add_argument(
        "--width",
        type=int,
        default=64,
        help="ResNet width (default 64, the standard network; 16 or 8 for a quick CPU run)",
    )
    p.add_argument(
        "--init",
        choices=models.INITS,
        default="flax",
        help="weight initialisation: flax (default, the official code's: lecun normal, zero dense bias) "
        "or torch (torchvision's: kaiming normal fan_out convs)",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, default=32, help="images are brought to size x size (default 32)")
    p.add_argument(
        "--fit",
        choices=data.FITS,
        default="resize",
        help="resize: both sides to --image-size "
        "(keeps the whole image, changes its aspect ratio); center-crop: the shorter side to "
        "--image-size, then the centre square (keeps the aspect ratio, cuts the long side's ends)",
    )
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (default all cores)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto: the GPU if torch sees one")


def add_prune_output(p):
    p.add_argument(
        "--link",
        help="also make this folder: an ImageFolder tree of symlinks to the kept images (must not exist or be empty)",
    )
    p.add_argument("--tracking-uri", help="MLflow store (default sqlite:///OUT/mlflow.db; MLFLOW_TRACKING_URI wins)")
    p.add_argument("--experiment", default="datadiet-prune", help="MLflow experiment (default datadiet-prune)")


def main(argv=None):
    args = parser().parse_args(argv)
    command = args.command + (f" {args.job}" if args.command == "job" else "")
    try:
        getattr(importlib.import_module(args.module), args.function)(args)
    except (ValueError, FileNotFoundError, RuntimeError, FloatingPointError) as error:
        if os.environ.get("DATADIET_TRACEBACK"):
            raise
        # DataError is a ValueError: bad inputs end with one line naming them, not a traceback.
        print(f"datadiet {command}: error: {error}", file=sys.stderr)
        sys.exit(1)
    # A stop (SIGTERM, Ctrl-C) is the entry point's (__main__.py): it covers the imports too.
