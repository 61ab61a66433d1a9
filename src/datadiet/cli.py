"""`datadiet <command>`: the entry point the workflow's rules call; each command is one job.

Rules pass what a job needs as one JSON `--spec` (so every hyperparameter lands in MLflow and a
change to it reruns exactly the jobs it affects) and wire input and output files as options.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from . import data, noise, results, scores, selection, tracking
from .train import (Callback, TrainConfig, TrainSet, checkpoint, epoch_count, evaluate, init_model,
                    load_checkpoint, run_seeds, total_steps, train)


class PrintProgress(Callback):
    """One line per epoch with speed and time left; the rule's log keeps it."""

    def __init__(self, total_epochs, total_steps, batch_size):
        self.total_epochs, self.total_steps, self.batch_size = total_epochs, total_steps, batch_size
        self.start, self.start_step = time.time(), None

    def on_epoch_end(self, epoch, step, metrics):
        if self.start_step is None:  # a resumed run counts speed from where it resumed
            self.start_step = step - self.total_steps // self.total_epochs
        rate = (step - self.start_step) / max(time.time() - self.start, 1e-9)
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(f"epoch {epoch}/{self.total_epochs} step {step}/{self.total_steps} {shown} "
              f"{rate * self.batch_size:.0f} img/s, {(self.total_steps - step) / max(rate, 1e-9):.0f} s left",
              flush=True)


class SaveCheckpoints(Callback):
    def __init__(self, out_dir, arch, width, num_classes):
        self.out_dir, self.arch, self.width, self.num_classes = Path(out_dir), arch, width, num_classes

    def on_checkpoint(self, epoch, model):
        results.save_tensors(checkpoint(model, self.arch, self.width, self.num_classes, epoch),
                             self.out_dir / f"ckpt_e{epoch}.pt")


def load_study_data(dataset_path, labels_path):
    """The study's dataset file and the (possibly noisy) training labels for this job."""
    dataset = results.load_tensors(dataset_path)
    labels = results.load_tensors(labels_path)["labels"]
    if len(labels) != len(dataset["train_labels"]):
        raise ValueError(f"labels file {labels_path} has {len(labels)} labels for "
                         f"{len(dataset['train_labels'])} training examples in {dataset_path}")
    return dataset, labels


def job_tags(args, consumed=()):
    tags = {"rule": args.rule, "consumed_runs": ",".join(consumed)}
    tags.update({f"wildcard.{k}": v for k, v in json.loads(args.wildcards).items()})
    return tags


def run_training(spec, dataset, labels, subset, name, tags, out_dir, save_epochs=(), forgetting=False,
                 artifacts=()):
    """Train one model on `subset` of the training set, as one MLflow run; returns (result, tracker)."""
    torch.set_num_threads(spec["threads"])
    cfg = TrainConfig(**{**spec["train"], "lr_milestones": tuple(spec["train"]["lr_milestones"])})
    seeds = run_seeds(spec["run"])
    steps = total_steps(cfg, len(dataset["train_labels"]), len(subset))
    epochs = epoch_count(steps, len(subset), cfg.batch_size)
    train_set = TrainSet(dataset["train_images"][subset], labels[subset], dataset["mean"], dataset["std"])
    test = (dataset["test_images"], dataset["test_labels"])
    arch, width, num_classes = spec["model"]["arch"], spec["model"]["width"], len(dataset["classes"])
    model = init_model(arch, num_classes, width, seeds["model"])
    params = {**spec, "seeds": seeds, "train_size": len(subset), "steps": steps}
    # Checkpoints and the resumable state live in work/ until the run ends: Snakemake deletes the
    # declared outputs of a failed job, and a resumed run must still find what it saved.
    out_dir = Path(out_dir)
    work = out_dir / "work"
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, params, tags) as run:
        for path in artifacts:
            tracking.log_artifact(path)
        callbacks = [PrintProgress(epochs, steps, cfg.batch_size), tracking.LogMetrics(),
                     SaveCheckpoints(work, arch, width, num_classes)]
        start = time.time()
        tracker = train(model, train_set, cfg, seeds["data"], steps, test=test, save_epochs=save_epochs,
                        state_path=work / "state.pt", callbacks=callbacks, forgetting=forgetting)
        for epoch in save_epochs:
            os.replace(work / f"ckpt_e{epoch}.pt", out_dir / f"ckpt_e{epoch}.pt")
        (work / "state.pt").unlink()
        work.rmdir()
        final = evaluate(model, *test, dataset["mean"], dataset["std"])
        tracking.log_metrics({"final_test_accuracy": final["accuracy"], "final_test_loss": final["loss"]})
        result = {"run_id": run.info.run_id, "test_accuracy": final["accuracy"], "test_loss": final["loss"],
                  "train_size": len(subset), "steps": steps, "seconds": round(time.time() - start, 2)}
    return result, tracker


def cmd_init_tracking(args):
    experiment_id = tracking.init_store(args.uri, args.experiment, args.artifacts)
    results.write_json({"uri": tracking.resolve_uri(args.uri), "experiment": args.experiment,
                        "experiment_id": experiment_id}, args.out)


def cmd_prepare_data(args):
    spec = json.loads(args.spec)
    splits = data.load(spec, args.cache)
    train_split, test_split = splits["train"], splits["test"]
    if spec.get("num_classes") and len(train_split.classes) != spec["num_classes"]:
        raise data.DataError(f"{spec['path']} has {len(train_split.classes)} classes, "
                             f"the config says num_classes={spec['num_classes']}")
    train_index = torch.arange(len(train_split.labels))
    if spec.get("train_per_class"):
        train_index = data.subset_per_class(train_split.labels, spec["train_per_class"], spec["subset_seed"])
    test_index = torch.arange(len(test_split.labels))
    if spec.get("test_per_class"):
        test_index = data.subset_per_class(test_split.labels, spec["test_per_class"], spec["subset_seed"])
    train_images = train_split.images[train_index]
    mean, std = data.channel_stats(train_images)
    results.save_tensors({
        "train_images": train_images, "train_labels": train_split.labels[train_index],
        "train_source_index": train_index, "test_images": test_split.images[test_index],
        "test_labels": test_split.labels[test_index], "classes": train_split.classes, "mean": mean, "std": std,
    }, args.out)
    print(f"{len(train_index)} training and {len(test_index)} test images, "
          f"{len(train_split.classes)} classes -> {args.out}")


def cmd_corrupt_labels(args):
    dataset = results.load_tensors(args.dataset)
    labels, corrupted = noise.permute_labels(dataset["train_labels"], args.fraction, args.seed)
    results.save_tensors({"labels": labels, "corrupted": corrupted}, args.out)
    changed = (labels != dataset["train_labels"]).sum().item()
    print(f"noise {args.fraction}: {len(corrupted)} labels permuted, {changed} changed -> {args.out}")


def cmd_train_scoring(args):
    """A full-data run that saves the checkpoints scores need and the forgetting counts."""
    spec = json.loads(args.spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    subset = torch.arange(len(labels))
    name = f"scoring-train noise={spec['noise']} seed={spec['run']}"
    result, tracker = run_training(spec, dataset, labels, subset, name, job_tags(args), args.out_dir,
                                   save_epochs=spec["save_epochs"], forgetting=True)
    values = scores.forgetting(tracker.counts, tracker.ever_correct, spec["never_learned"])
    results.write_scores(args.forgetting, subset, labels, {"score": values},
                         {"score": "forgetting", "seed": spec["run"], "runs": [result["run_id"]]})
    tracking.log_artifact(args.forgetting, run_id=result["run_id"])
    results.write_json(result, Path(args.out_dir) / "result.json")


def cmd_score(args):
    """GraNd or EL2N of every training example from one checkpoint, as one MLflow run."""
    spec = json.loads(args.spec)
    torch.set_num_threads(spec["threads"])
    dataset, labels = load_study_data(args.dataset, args.labels)
    model = load_checkpoint(args.checkpoint, spec["model"]["arch"])
    images = data.normalize(dataset["train_images"], dataset["mean"], dataset["std"], model.memory_format)
    trained_by = results.read_json(args.train_result)["run_id"]
    name = f"score {spec['kind']}@{spec['epoch']} noise={spec['noise']} seed={spec['run']}"
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"], name, spec,
                          job_tags(args, [trained_by])) as run:
        start = time.time()
        if spec["kind"] == "grand":
            values = scores.grand(model, images, labels, chunk_size=spec["grand_chunk_size"])
        else:
            values = scores.el2n(model, images, labels)
        seconds = time.time() - start
        print(f"{spec['kind']}@{spec['epoch']}: {len(values)} examples in {seconds:.1f} s "
              f"({len(values) / seconds:.0f} img/s)")
        tracking.log_metrics({"seconds": seconds, "mean_score": values.mean().item()})
        results.write_scores(args.out, torch.arange(len(labels)), labels, {"score": values},
                             {"score": f"{spec['kind']}_e{spec['epoch']}", "seed": spec["run"],
                              "runs": [run.info.run_id], "trained_by": trained_by})
        tracking.log_artifact(args.out)


def cmd_input_norm(args):
    spec = json.loads(args.spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    images = data.normalize(dataset["train_images"], dataset["mean"], dataset["std"])
    with tracking.job_run(spec["tracking"]["uri"], spec["tracking"]["experiment"],
                          f"score input_norm noise={spec['noise']}", spec, job_tags(args)) as run:
        values = scores.input_norm(images)
        results.write_scores(args.out, torch.arange(len(labels)), labels, {"mean": values},
                             {"score": "input_norm", "runs": [run.info.run_id]})
        tracking.log_artifact(args.out)


def cmd_aggregate(args):
    """Mean over seeds, with each seed's column kept beside it."""
    tables = [results.read_scores(path) for path in args.inputs]
    provenance = [results.read_json(results.provenance_path(path)) for path in args.inputs]
    columns = {f"seed{p['seed']}": torch.tensor(t["score"].to_numpy()) for t, p in zip(tables, provenance)}
    mean = torch.stack(list(columns.values())).mean(0)
    results.write_scores(args.out, tables[0]["index"], tables[0]["label"], {"mean": mean, **columns},
                         {"score": provenance[0]["score"], "runs": [r for p in provenance for r in p["runs"]]})


def cmd_retrain(args):
    """Select a subset (by a score or at random) and train on it for the same step budget."""
    spec = json.loads(args.spec)
    dataset, labels = load_study_data(args.dataset, args.labels)
    n, method, keep = len(labels), spec["method"], spec["keep"]
    consumed = []
    if method in ("full", "random"):
        subset = selection.random(n, keep, run_seeds(spec["run"])["subset"])
    else:
        table = results.read_scores(args.scores, n)
        consumed = results.read_json(results.provenance_path(args.scores))["runs"]
        subset = selection.STRATEGIES[spec["strategy"]](torch.tensor(table["mean"].to_numpy()), keep)
    out_dir = Path(args.out_dir)
    subset_file = out_dir / "subset.json"
    results.write_json({"method": method, "keep": keep, "run": spec["run"], "indices": subset.tolist(),
                        "score_runs": consumed}, subset_file)
    name = f"retrain {method} keep={keep} rep={spec['run']} noise={spec['noise']}"
    result, _ = run_training(spec, dataset, labels, subset, name, job_tags(args, consumed), out_dir,
                             artifacts=[subset_file])
    results.write_json({**result, "method": method, "keep": keep, "run": spec["run"], "noise": spec["noise"],
                        "score_runs": consumed}, out_dir / "result.json")


def cmd_report(args):
    from . import report
    report.build(json.loads(args.spec), args.results, args.scores, args.out_dir, args.html)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="datadiet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help):
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func)
        return p

    def tracked(p):
        p.add_argument("--spec", required=True, help="the job's parameters as JSON")
        p.add_argument("--rule", default="manual", help="workflow rule (an MLflow tag)")
        p.add_argument("--wildcards", default="{}", help="the rule's wildcards as JSON (MLflow tags)")
        return p

    p = command("init-tracking", cmd_init_tracking, "create the MLflow store and experiment once")
    p.add_argument("--uri", required=True)
    p.add_argument("--experiment", required=True)
    p.add_argument("--artifacts", help="artifact root for a new experiment")
    p.add_argument("--out", required=True, help="JSON marker written when the store is ready")

    p = command("prepare-data", cmd_prepare_data, "decode, cache and subset a dataset")
    p.add_argument("--spec", required=True, help="the config's data section as JSON")
    p.add_argument("--cache", required=True, help="directory for decoded-dataset caches")
    p.add_argument("--out", required=True)

    p = command("corrupt-labels", cmd_corrupt_labels, "permute a fraction of the training labels")
    p.add_argument("--dataset", required=True)
    p.add_argument("--fraction", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)

    p = tracked(command("train-scoring", cmd_train_scoring, "full-data training run for scores"))
    for opt in ("--dataset", "--labels", "--out-dir", "--forgetting"):
        p.add_argument(opt, required=True)

    p = tracked(command("score", cmd_score, "GraNd or EL2N from a checkpoint"))
    for opt in ("--dataset", "--labels", "--checkpoint", "--train-result", "--out"):
        p.add_argument(opt, required=True)

    p = tracked(command("input-norm", cmd_input_norm, "the input-norm control score"))
    for opt in ("--dataset", "--labels", "--out"):
        p.add_argument(opt, required=True)

    p = command("aggregate", cmd_aggregate, "mean of per-seed scores")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--out", required=True)

    p = tracked(command("retrain", cmd_retrain, "select a subset and train on it"))
    for opt in ("--dataset", "--labels", "--out-dir"):
        p.add_argument(opt, required=True)
    p.add_argument("--scores", help="mean score file (not needed for random)")

    p = command("report", cmd_report, "figures and the HTML report from result files")
    p.add_argument("--spec", required=True)
    p.add_argument("--results", nargs="+", required=True)
    p.add_argument("--scores", nargs="+", required=True)
    p.add_argument("--out-dir", required=True, help="folder for the figures and tables")
    p.add_argument("--html", required=True)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError, FloatingPointError) as error:
        # DataError is a ValueError: bad inputs end with one line naming them, not a traceback.
        print(f"datadiet {args.command}: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
