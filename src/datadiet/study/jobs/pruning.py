"""The retraining step of every pruning experiment: select a subset (by a score or at random) and train
on it for the same step budget as full data."""

import sys
from pathlib import Path

import torch

from ... import results, selection
from ...train import run_seeds
from .. import job, names


def retrain(args):
    spec = args.spec
    dataset, labels = job.load_data(args)
    n, method, keep, how = len(labels), spec["method"], spec["keep"], spec["selection"]
    values, consumed = None, []
    if how["kind"] != "random":
        values = torch.tensor(results.read_scores(args.scores, n)["mean"].to_numpy())
        consumed = results.read_json(results.provenance_path(args.scores))["runs"]
    subset = selection.select(how, n, keep, run_seeds(spec["run"])["subset"], values)
    subset_file = Path(args.out_dir) / "subset.json"
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
        args.out_dir,
        consumed,
        artifacts=[subset_file],
        outputs=lambda result, model: {**chosen, "score_runs": consumed},
    )
