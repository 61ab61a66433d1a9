"""The retraining step of every pruning experiment: select a subset (by a score or at random) and train
on it for the same step budget as full data."""

import sys
from pathlib import Path

from ... import selection
from ...recipe import run_seeds
from ...runtime import files
from . import each_run, tracked


def retrain(args):
    """The repeats of one retraining point, one after another (--spec: a list, one spec a repeat, and an
    --out-dir each), each as its own MLflow run told apart by its wildcard rep. A repeat an earlier try of
    the job finished is not trained again. --scores: one mean score file for every repeat, or one a
    repeat (each repeat's own scoring runs), none for a method that selects by no score."""
    dataset, labels = tracked.load_data(args)
    paths = args.scores if len(args.scores) != 1 else args.scores * len(args.spec)
    if paths and len(paths) != len(args.spec):
        raise ValueError(f"--scores: {len(paths)} score files for {len(args.spec)} repeats (give one, or one a repeat)")
    read = {path: selection_scores(path, len(labels)) for path in dict.fromkeys(paths)}  # each file once
    scores = [read[path] for path in paths] or [(None, {"runs": [], "seeds": []})] * len(args.spec)
    for (one, out_dir), selected_by in zip(each_run(args, args.out_dir, own={"rep": "run"}), scores, strict=True):
        if not tracked.restore_finished(one.spec, out_dir, OUTPUTS):
            retrain_run(one, dataset, labels, selected_by, out_dir)
            tracked.keep_finished(one.spec, out_dir, OUTPUTS)
    tracked.forget_finished(args.out_dir)


OUTPUTS = ("subset.json", "result.json")  # a run's files the rule declares


def selection_scores(path, n):
    """The mean scores in a file of --scores and what made them: {"runs": MLflow runs, "seeds": scoring seeds}."""
    return files.read_mean_scores(path, n), files.read_json(files.provenance_path(path))


def retrain_run(args, dataset, labels, scores, out_dir):
    spec = args.spec
    n, method, keep, chosen_by = len(labels), spec["method"], spec["keep"], spec["selection"]
    values, made_by = scores
    # The scoring runs behind the selection: their MLflow runs, and their seeds where the file says them.
    consumed, provenance = made_by["runs"], {"score_runs": made_by["runs"], "score_seeds": made_by.get("seeds")}
    subset = selection.select(chosen_by, n, keep, run_seeds(spec["run"])["subset"], values)
    subset_file = Path(out_dir) / "subset.json"
    chosen = {"method": method, "keep": keep, "run": spec["run"], "selection": chosen_by}
    described, warning = selection.describe(chosen_by["kind"], values, subset, labels, dataset["classes"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    written = {**chosen, **described, "indices": subset.tolist(), **provenance}
    files.write_json(written, subset_file)
    name = f"retrain {tracked.subset_label(spec)} noise={spec['noise']} {spec['dataset']} {spec['model']['arch']}"
    training = tracked.Training(args, spec, dataset, labels, subset)
    tracked.run_training(
        training,
        name,
        out_dir,
        consumed,
        artifacts=[subset_file],
        outputs=lambda result, model: {**chosen, **provenance},
    )
