"""The files jobs hand to each other. Every write goes through a temporary file and a rename, so a
job that dies never leaves a half-written output that Snakemake would take as done; a job stopped
inside a write removes its temporary file.
"""

import json
import os
import pickle
import shutil
from pathlib import Path

import pandas as pd
import torch

from . import stop


def atomic(path, write):
    """`write(tmp)` writes the file, which then replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    stop.point(f"write:{path.name}")
    try:
        write(tmp)
        stop.point(f"written:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish(source, path):
    """`path` becomes a copy of `source` (a hard link where the file system allows), atomically;
    `source` stays, so a job stopped after this still finds it when it resumes."""

    def link(tmp):
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)

    atomic(path, link)


def save_tensors(obj, path):
    atomic(path, lambda tmp: torch.save(obj, tmp))


def load_tensors(path):
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as error:
        # A torn copy or a file of something else: say which file, not only the zip reader's complaint.
        raise ValueError(f"{path} is truncated or not a file this project wrote ({error})") from error


def write_text(text, path):
    atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_json(obj, path):
    write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", path)


def read_json(path):
    return json.loads(Path(path).read_text())


def write_scores(path, index, labels, columns, provenance):
    """One row per example (its index in the study's training set and label), a column per score
    value (float32, written exactly), and a JSON sidecar naming the runs that made it (first: the
    table is what the workflow waits for)."""
    table = pd.DataFrame({"index": torch.as_tensor(index).numpy(), "label": torch.as_tensor(labels).numpy()})
    for name, values in columns.items():
        table[name] = torch.as_tensor(values, dtype=torch.float32).numpy()
    write_json(provenance, provenance_path(path))
    atomic(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.9g"))


def provenance_path(scores_path):
    return Path(scores_path).with_suffix(".json")


def read_mean_scores(path, num_examples):
    """Each example's score averaged over seeds (an aggregate's 'mean' column), in dataset order."""
    return torch.tensor(read_scores(path, num_examples)["mean"].to_numpy())


def read_scores(path, num_examples=None):
    """A score table, checked against the training set it claims to score."""
    table = pd.read_csv(path)
    if num_examples is not None and len(table) != num_examples:
        raise ValueError(f"score file {path} has {len(table)} rows but the training set has {num_examples} examples")
    if list(table["index"]) != list(range(len(table))):
        raise ValueError(f"score file {path} is not in dataset order (column 'index' must be 0..N-1)")
    # Scores are numbers, floats even when every value is whole (a run that learned every example has
    # integer forgetting counts, which the CSV gives back as int64).
    values = [c for c in table.columns if c not in ("index", "label")]
    return table.astype(dict.fromkeys(values, "float64"))
