"""Scoring steps: a full-data training run per seed (its checkpoints, forgetting and AUM), GraNd or EL2N
from one checkpoint, and the input-norm control."""

import time

import torch

from ... import data, scores
from ...models import load_checkpoint
from ...runtime import files, hardware, progress, tracking
from . import each_run, tracked


def train_scoring(args):
    """A full-data training run that keeps checkpoints; with --forgetting and --aum, tracked over the
    whole run (a size-sweep scoring run has neither, and stops at its score's checkpoint)."""
    spec = args.spec
    dataset, labels = tracked.load_data(args)
    subset = torch.arange(len(labels))
    paths = {"forgetting": args.forgetting, "aum": args.aum}
    trackers = {"forgetting": scores.ForgettingTracker(len(labels)), "aum": scores.AUMTracker(len(labels))}
    trackers = {name: tracker for name, tracker in trackers.items() if paths[name]}
    name = f"scoring-train seed={spec['run']} noise={spec['noise']} {spec['dataset']} {spec['model']['arch']}"

    def write_scores(result, model):
        values = {"forgetting": lambda t: t.score(spec["never_learned"]), "aum": lambda t: t.score()}
        for score, tracker in trackers.items():
            made_by = {"score": score, "seed": spec["run"], "runs": [result["run_id"]]}
            files.write_scores(paths[score], subset, labels, {"score": values[score](tracker)}, made_by)
            tracking.log_artifact(paths[score])
        return {}

    training = tracked.Training(args, spec, dataset, labels, subset)
    tracked.run_training(
        training,
        name,
        args.out_dir,
        checkpoint_epochs=spec["checkpoint_epochs"],
        spawn_epochs=spec.get("spawn_epochs", []),
        trackers=trackers,
        outputs=write_scores,
    )


def score(args):
    """The checkpoint scores (GraNd, EL2N, ...) of one scoring run, one after another from their checkpoints (--spec: a
    list, one spec a score), each as its own MLflow run told apart by its wildcards kind and epoch."""
    device = hardware.device(args.threads, args.device)
    dataset, labels = tracked.load_data(args)
    trained_by = files.read_json(args.train_result)["run_id"]
    for one, checkpoint, out in each_run(args, args.checkpoint, args.out, own={"kind": "kind", "epoch": "epoch"}):
        model = load_checkpoint(checkpoint, one.spec["arch"]).to(device)
        score_one(one, dataset, labels, model, device, out, trained_by)


def score_one(args, dataset, labels, model, device, out, trained_by):
    spec = args.spec
    images = data.normalize(dataset["train_images"], dataset["mean"], dataset["std"], model.memory_format)
    label = f"{spec['kind']}@{spec['epoch']}"
    name = f"score {label} seed={spec['run']} noise={spec['noise']} {spec['dataset']} {spec['arch']}"
    with tracked.run(args, name, spec, out, [trained_by], device) as run:
        start = time.time()
        with progress.bar(len(labels), label) as bar:
            values = scores.at_checkpoint(spec["kind"], model, images, labels, spec, progress=bar.update)
        seconds = time.time() - start
        print(f"{label}: {len(values)} examples in {seconds:.1f} s ({len(values) / seconds:.0f} img/s)")
        tracking.log_metrics({"seconds": seconds, "mean_score": values.mean().item()})
        made_by = {
            "score": f"{spec['kind']}_e{spec['epoch']}",
            "seed": spec["run"],
            "runs": [run.info.run_id],
            "trained_by": trained_by,
        }
        files.write_scores(out, torch.arange(len(labels)), labels, {"score": values}, made_by)
        tracking.log_artifact(out)


def input_norm(args):
    spec = args.spec
    dataset, labels = tracked.load_data(args)
    images = data.normalize(dataset["train_images"], dataset["mean"], dataset["std"])
    with tracked.run(args, f"score input_norm noise={spec['noise']} {spec['dataset']}", spec, args.out) as run:
        values = scores.input_norm(images)
        made_by = {"score": "input_norm", "runs": [run.info.run_id]}
        files.write_scores(args.out, torch.arange(len(labels)), labels, {"mean": values}, made_by)
        tracking.log_artifact(args.out)
