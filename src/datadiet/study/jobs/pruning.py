"""The retraining step of every pruning experiment: select a subset (by a score or at random) and train
on it for the same step budget as full data."""

import sys
from pathlib import Path

from ... import results, selection
from ...train import run_seeds
from .. import job
from . import each_run


def retrain(args):
    """The repeats of one retraining point, one after another (--spec: a list, one spec a repeat, and an
    --out-dir each), each as its own MLflow run told apart by its wildcard rep. A repeat an earlier try of
    the job finished is not trained again."""
    dataset, labels = job.load_data(args)
    scores = selection_scores(args.scores, len(labels))
    for one, out_dir in each_run(args, args.out_dir, own={"rep": "run"}):
        if not job.restore_finished(one.spec, out_dir, OUTPUTS):
            retrain_run(one, dataset, labels, scores, out_dir)
            job.keep_finished(one.spec, out_dir, OUTPUTS)
    job.forget_finished(args.out_dir)


OUTPUTS = ("subset.json", "result.json")  # a run's files the rule declares


def selection_scores(path, n):
    """The mean scores a job's method selects by (--scores) and the runs that made them; (None, []) for a
    method that selects by none (random, full data)."""
    if path is None:
        return None, []
    return results.read_mean_scores(path, n), results.read_json(results.provenance_path(path))["runs"]


def retrain_run(args, dataset, labels, scores, out_dir):
    spec = args.spec
    n, method, keep, how = len(labels), spec["method"], spec["keep"], spec["selection"]
    values, consumed = scores
    subset = selection.select(how, n, keep, run_seeds(spec["run"])["subset"], values)
    subset_file = Path(out_dir) / "subset.json"
    chosen = {"method": method, "keep": keep, "run": spec["run"], "selection": how}
    described, warning = selection.describe(how["kind"], values, subset, labels, dataset["classes"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    written = {**chosen, **described, "indices": subset.tolist(), "score_runs": consumed}
    results.write_json(written, subset_file)
    name = f"retrain {job.subset_label(spec)} noise={spec['noise']} {spec['dataset']} {spec['model']['arch']}"
    training = job.Training(args, spec, dataset, labels, subset)
    job.run_training(
        training,
        name,
        out_dir,
        consumed,
        artifacts=[subset_file],
        outputs=lambda result, model: {**chosen, "score_runs": consumed},
    )
