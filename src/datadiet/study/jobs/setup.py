"""Untracked steps: the MLflow store, the decoded dataset, the label-noise variants and the mean of
per-seed scores. None imports MLflow, except the step that creates the store."""

import json
from pathlib import Path

import torch

from ... import data, noise
from ...runtime import files


def init_tracking(args):
    """The store (MLFLOW_TRACKING_URI, else SQLite in --store-dir, a path relative to where the
    workflow runs, so a moved checkout keeps its store; not inside a Slurm job) and its experiment."""
    from ...runtime import tracking  # here only: the other steps never import MLflow

    store = Path(args.store_dir)
    uri = tracking.study_store(f"sqlite:///{store}/mlflow.db")
    experiment_id = tracking.init_store(uri, args.experiment, store / "mlflow" / "artifacts")
    files.write_json({"uri": uri, "experiment": args.experiment, "experiment_id": experiment_id}, args.out)


def download(args):
    spec = json.loads(args.spec)
    data.download(spec)
    files.write_json({"source": spec["source"], "path": spec["path"]}, args.out)


def prepare_data(args):
    spec = json.loads(args.spec)
    splits = data.load(spec, args.cache)
    train_split, test_split = splits["train"], splits["test"]
    if spec.get("num_classes") and len(train_split.classes) != spec["num_classes"]:
        raise data.DataError(
            f"{spec['path']} has {len(train_split.classes)} classes, the config says num_classes={spec['num_classes']}"
        )
    train_index = training_subset(train_split.labels, spec)
    test_index = per_class(test_split.labels, spec.get("test_per_class"), spec["subset_seed"])
    train_images = train_split.images[train_index]
    mean, std = data.channel_stats(train_images)
    dataset = {
        "train_images": train_images,
        "train_labels": train_split.labels[train_index],
        "train_source_index": train_index,
        "test_images": test_split.images[test_index],
        "test_labels": test_split.labels[test_index],
        "classes": train_split.classes,
        "mean": mean,
        "std": std,
    }
    files.save_tensors(dataset, args.out)
    print(
        f"{len(train_index)} training and {len(test_index)} test images, "
        f"{len(train_split.classes)} classes -> {args.out}"
    )


def training_subset(labels, spec):
    """A size of the size sweep (`size`: nested class-balanced subsets, one seed), else per class."""
    if spec.get("size"):
        return data.nested_subset(labels, spec["size"], spec["subset_seed"])
    return per_class(labels, spec.get("train_per_class"), spec["subset_seed"])


def per_class(labels, count, seed):
    """Indices of a class-balanced subset of `count` a class, or of all examples."""
    return data.subset_per_class(labels, count, seed) if count else torch.arange(len(labels))


def corrupt_labels(args):
    fraction = float(args.fraction)
    dataset = files.load_tensors(args.dataset)
    labels, corrupted = noise.permute_labels(dataset["train_labels"], fraction, int(args.seed))
    files.save_tensors({"labels": labels, "corrupted": corrupted}, args.out)
    permuted = round(fraction * len(labels))
    print(f"noise {fraction}: {permuted} labels permuted, {len(corrupted)} changed (corrupted) -> {args.out}")


def aggregate(args):
    """Mean over seeds, with each seed's column kept beside it."""
    tables = [files.read_scores(path) for path in args.inputs]
    provenance = [files.read_json(files.provenance_path(path)) for path in args.inputs]
    columns = {f"seed{p['seed']}": torch.tensor(t["score"].to_numpy()) for t, p in zip(tables, provenance)}
    mean = torch.stack(list(columns.values())).mean(0)
    made_by = {
        "score": provenance[0]["score"],
        "runs": [r for p in provenance for r in p["runs"]],
        "seeds": [p["seed"] for p in provenance],
    }
    files.write_scores(args.out, tables[0]["index"], tables[0]["label"], {"mean": mean, **columns}, made_by)
