"""The retraining step of every pruning experiment: select a subset (by a score or at random) and train
on it for the same step budget as full data."""

import sys
from pathlib import Path

import torch

from ... import results, selection
from ...train import run_seeds
from .. import job, names
from . import each_run


def retrain(args):
    """The repeats of one retraining point, one after another (--spec: a list, one spec a repeat, and an
    --out-dir each), each as its own MLflow run told apart by its wildcard rep. A repeat an earlier try of
    the job finished is not trained again."""
    dataset, labels = job.load_data(args)
    for one, out_dir in each_run(args, args.out_dir, own={"rep": "run"}):
        if not job.restore_finished(one.spec, out_dir, OUTPUTS):
            retrain_run(one, dataset, labels, out_dir)
            job.keep_finished(one.spec, out_dir, OUTPUTS)
    job.forget_finished(args.out_dir)


OUTPUTS = ("subset.json", "result.json")  # a run's files the rule declares


def retrain_run(args, dataset, labels, out_dir):
    spec = args.spec
    n, method, keep, how = len(labels), spec["method"], spec["keep"], spec["selection"]
    values, consumed = None, []
    if how["kind"] != "random":
        values = torch.tensor(results.read_scores(args.scores, n)["mean"].to_numpy())
        consumed = results.read_json(results.provenance_path(args.scores))["runs"]
    subset = selection.select(how, n, keep, run_seeds(spec["run"])["subset"], values)
    subset_file = Path(out_dir) / "subset.json"
    chosen = {"method": method, "keep": keep, "run": spec["run"], "selection": how}
    described, warning = selection.describe(how["kind"], values, subset, labels, dataset["classes"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    written = {**chosen, **described, "indices": subset.tolist(), "score_runs": consumed}
    results.write_json(written, subset_file)
    left_out = f" left_out={how['left_out']}" if "left_out" in how else ""
    name = (
        f"retrain {names.run_label(method)} keep={keep}{left_out} rep={spec['run']} "
        f"noise={spec['noise']} {spec['dataset']} {spec['model']['arch']}"
    )
    training = job.Training(args, spec, dataset, labels, subset)
    job.run_training(
        training,
        name,
        out_dir,
        consumed,
        artifacts=[subset_file],
        outputs=lambda result, model: {**chosen, "score_runs": consumed},
    )
