"""The study's result files read into tables: training runs, score files, corrupted labels, CSV tables.
The experiments' `read` functions use these (experiment.py); nothing here draws or judges."""

from pathlib import Path

import numpy as np
import pandas as pd

from ..runtime import files
from . import layout, names

RUN_COLUMNS = ["dataset", "arch", "noise", "method", "keep", "run", "test_accuracy", "final_train_accuracy",
               "num_examples", "train_size", "run_id"]  # fmt: skip


def collect_runs(result_paths):
    """One row per training run: dataset, architecture, noise, method, kept fraction, repeat,
    final test and train accuracy and its MLflow run (no rows, these columns, for an experiment not run)."""
    if not result_paths:
        return pd.DataFrame(columns=RUN_COLUMNS)
    rows = []
    for path in result_paths:
        result = files.read_json(path)
        left_out = result.get("selection", {}).get("left_out")
        if left_out is not None:
            # Where the window sits: the share of the set and the examples above it (harder than it).
            from .. import selection  # torch: Snakemake imports the experiments, which import this, at every start

            offset = selection.window_offset(result["num_examples"], result["keep"], left_out)
            result.update(left_out=left_out, excluded_hardest=result["num_examples"] - offset - result["train_size"])
        rows.append(result)
    return pd.DataFrame(rows)


def collect_scores(score_paths):
    """Mean scores as {(dataset, arch, noise): DataFrame with a column per score}, the per-seed
    columns as {(dataset, arch, noise): {score: DataFrame}}, and the MLflow runs behind each file."""
    means, seeds, provenance = {}, {}, []
    for path in map(Path, score_paths):
        where = layout.parse(layout.MEAN_SCORES, path)
        dataset, arch, level = where["dataset"], where["arch"], float(where["noise"])
        made_by = files.read_json(files.provenance_path(path))
        table = files.read_scores(path)
        key = (dataset, arch, level)
        means.setdefault(key, {})[made_by["score"]] = table["mean"].to_numpy()
        per_seed = table[[c for c in table.columns if c.startswith("seed")]]
        if per_seed.shape[1] > 1:
            seeds.setdefault(key, {})[made_by["score"]] = per_seed
        provenance.append(
            {
                "dataset": dataset,
                "arch": arch,
                "noise": level,
                "score": names.label(made_by["score"]),
                "file": str(path),
                "runs": " ".join(made_by["runs"]),
            }
        )
    return {k: pd.DataFrame(v) for k, v in means.items()}, seeds, pd.DataFrame(provenance)


def collect_corrupted(label_paths):
    """{(dataset, noise): bool array, True where the label was corrupted}."""
    corrupted = {}
    for path in map(Path, label_paths):
        labels = files.load_tensors(path)
        mask = np.zeros(len(labels["labels"]), dtype=bool)
        mask[labels["corrupted"].numpy()] = True
        where = layout.parse(layout.LABELS, path)
        corrupted[(where["dataset"], float(where["noise"]))] = mask
    return corrupted


def read_tables(paths):
    """The CSV files of an experiment as one table (empty for an experiment not run)."""
    return pd.concat([pd.read_csv(p) for p in paths]) if paths else pd.DataFrame()
