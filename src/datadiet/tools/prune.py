"""Prune your own data: score every image of an ImageFolder tree with short training runs of the
project's own loop, keep a fraction of it by a selection method, and write what was kept.

The science stays in scores.py and selection.py, the training in train.py; MLflow, progress bars and
the order of the steps are the CLI's (`datadiet prune`, `datadiet scores`).
"""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import data, scores, selection
from ..models import init_model
from ..recipe import run_seeds, total_steps
from ..registry import AT_CHECKPOINT, OF_THE_DATA, SELECTIONS
from ..runtime import files
from ..train import Hooks, train

# Scores of a model at an epoch, scores tracked over the whole training run, and the one that needs no model.
AT_EPOCH = tuple(AT_CHECKPOINT)
TRACKED = {"forgetting": scores.ForgettingTracker, "aum": scores.AUMTracker}
SCORES = (*AT_EPOCH, *TRACKED, *OF_THE_DATA)
METHODS = tuple(SELECTIONS)
# scores.csv columns other than the scores themselves.
FIXED_COLUMNS = ("path", "label", "label_index", "mean", "rank", "kept")


def check_options(score, method, keep, epochs, score_epoch, seeds, window_left_out, out, link):
    """The score epoch to use (None for scores that have none); ValueError naming the option for
    anything out of range, before any work.

    The default score epoch is the paper's: EL2N and GraNd at epoch 20 of 200, a tenth of the run.
    """
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}: expected one of {', '.join(SCORES)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    try:
        selection.kept_count(1, keep)  # the range check of every selection
    except ValueError as e:
        raise ValueError(f"--keep: {e}") from None
    if method == "window" and window_left_out is None:
        raise ValueError("--method window needs --window-left-out (0: the hardest window, 1 - keep: the easiest)")
    if epochs < 1 or seeds < 1:
        raise ValueError(f"--epochs and --seeds must be at least 1, got {epochs} and {seeds}")
    if score not in AT_EPOCH:
        if score_epoch is not None:
            raise ValueError(f"--score-epoch applies to {', '.join(AT_EPOCH)}, not to {score}")
    elif score_epoch is None:
        score_epoch = max(1, round(epochs / 10))
    elif not 0 <= score_epoch <= epochs:
        raise ValueError(f"--score-epoch must be in [0, --epochs={epochs}], got {score_epoch}")
    if Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if link is not None and Path(link).exists() and (not Path(link).is_dir() or any(Path(link).iterdir())):
        raise ValueError(f"--link {link} exists and is not an empty folder; remove it or name another")
    return score_epoch


def list_folder(root):
    """(absolute image paths, int64 labels, class names) of an ImageFolder tree, in ImageFolder order."""
    root = Path(root)
    if not root.is_dir():
        raise data.DataError(
            f"data folder {root} does not exist" if not root.exists() else f"data folder {root} is a file, not a folder"
        )
    classes, samples = data.list_imagefolder(root.resolve())
    if len(classes) < 2:
        raise data.DataError(f"{root} has one class folder ({classes[0]}); pruning needs at least 2 classes")
    return [Path(p) for p, _ in samples], torch.tensor([c for _, c in samples], dtype=torch.int64), classes


def decode_images(paths, size, fit, progress=None):
    """uint8 [N, 3, size, size]: every image brought to one size (data.read_image); progress(1) per image."""
    images = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    for i, path in enumerate(paths):
        images[i] = data.read_image(path, size, fit)
        if progress is not None:
            progress(1)
    return images


def run_steps(score, cfg, num_examples, score_epoch):
    """(steps this scoring run trains, steps of the whole run) for a TrainConfig on num_examples images."""
    full = total_steps(cfg, num_examples, num_examples)
    if score in TRACKED:
        return full, full
    return score_epoch * (num_examples // cfg.batch_size), full


def train_seed(train_set, num_classes, cfg, arch, width, init, seed, score, score_epoch, device, callbacks=()):
    """(model, trackers) of scoring run `seed` (the official seeds, train.run_seeds).

    EL2N and GraNd stop at the score epoch: the rest of the run cannot change a score taken there. The
    learning-rate milestones stay at the steps of the whole run, as in the paper, whose scores come
    from checkpoints of full-length runs. Forgetting and AUM are tracked over the whole run.
    """
    seeds = run_seeds(seed)
    model = init_model(arch, num_classes, width, seeds["model"], init).to(device)
    steps, full = run_steps(score, cfg, len(train_set.labels), score_epoch)
    trackers = {score: TRACKED[score](len(train_set.labels))} if score in TRACKED else {}
    if steps:
        cfg = replace(cfg, lr_milestones=tuple(f * full / steps for f in cfg.lr_milestones))
        train(model, train_set, cfg, seeds["data"], steps, Hooks(tuple(callbacks)), trackers)
    return model, trackers


def score_seed(score, model, trackers, train_set, never_learned="inf", progress=None):
    """Score of every example (float32 [N], higher = harder) from a trained scoring run."""
    if score == "forgetting":
        return trackers[score].score(never_learned)
    if score == "aum":
        return trackers[score].score()
    images = data.normalize(train_set.images, train_set.mean, train_set.std, model.memory_format)
    return scores.at_checkpoint(score, model, images, train_set.labels, progress=progress)


def input_norm(train_set):
    """The input-norm baseline: needs no training, so no seeds."""
    return scores.input_norm(data.normalize(train_set.images, train_set.mean, train_set.std))


def score_table(paths, labels, classes, columns, seed):
    """One row per image in ImageFolder order: path, label (class name), label_index, a column per
    seed's score, their mean, and rank (1 = hardest; ties ranked as selection.keep_max keeps them
    with the same `seed`)."""
    table = pd.DataFrame(
        {"path": [str(p) for p in paths], "label": [classes[i] for i in labels.tolist()], "label_index": labels.numpy()}
    )
    for name, values in columns.items():
        table[name] = values.float().numpy()
    mean = torch.stack([v.float() for v in columns.values()]).mean(0)
    table["mean"] = mean.numpy()
    rank = torch.empty(len(mean), dtype=torch.int64)
    rank[selection.ascending_order(mean, seed)] = torch.arange(len(mean), 0, -1)
    table["rank"] = rank.numpy()
    return table


def write_outputs(out, table, kept, root, link=None):
    """scores.csv (with a `kept` column), keep.txt (the kept paths, hardest first) and, with `link`, an
    ImageFolder tree of symlinks to the kept images: link/<class>/<path under the class folder>."""
    out = Path(out)
    table = table.assign(kept=0)
    table.loc[kept.numpy(), "kept"] = 1
    files.write_text(table.to_csv(index=False, float_format="%.9g"), out / "scores.csv")
    kept_rows = table[table.kept == 1].sort_values("rank")
    files.write_text("".join(f"{p}\n" for p in kept_rows.path), out / "keep.txt")
    if link is not None:
        root = Path(root).resolve()
        for path, label in zip(kept_rows.path, kept_rows.label):
            target = Path(path)
            name = Path(link) / label / target.relative_to(root / label)
            name.parent.mkdir(parents=True, exist_ok=True)
            name.symlink_to(target)
    return table


def read_table(path):
    """A scores.csv written by `write_outputs`; a folder means the scores.csv in it."""
    path = Path(path)
    if path.is_dir():
        path = path / "scores.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (expected a scores.csv written by datadiet prune)")
    table = pd.read_csv(path)
    missing = [c for c in FIXED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} is not a scores.csv of datadiet prune: no column {', '.join(missing)}")
    return table, path


def score_columns(table):
    return [c for c in table.columns if c not in FIXED_COLUMNS]


BLOCKS = " ▁▂▃▄▅▆▇█"


def histogram(values, edges):
    """Counts in the bins `edges` as block characters, each bar scaled to this histogram's fullest bin."""
    counts, _ = np.histogram(values, edges)
    top = max(counts.max(), 1)
    return "".join(BLOCKS[math.ceil(8 * c / top)] for c in counts)


def summary(table, top=10, bins=10):
    """Text: per class the count, kept count, mean and quartiles of the mean score and a histogram
    (bins shared by all classes, infinite scores counted apart), then the `top` hardest images."""
    columns = score_columns(table)
    name = columns[0].partition("_seed")[0]
    finite = table["mean"][np.isfinite(table["mean"])]
    edges = np.linspace(finite.min(), finite.max(), bins + 1) if len(finite) else np.linspace(0, 1, bins + 1)
    seeds = f" (mean of {len(columns)} seeds)" if len(columns) > 1 else ""
    lines = [
        f"{len(table)} images, {table.label.nunique()} classes, score {name}{seeds}, {int(table.kept.sum())} kept",
        f"{'class':<14}{'images':>7}{'kept':>6}{'mean':>9}{'q25':>9}{'median':>9}{'q75':>9}  "
        f"histogram {edges[0]:.3g} .. {edges[-1]:.3g}",
    ]
    groups = [(str(label), rows) for label, rows in table.groupby("label", sort=False)] + [("all", table)]
    for label, rows in groups:
        values = rows["mean"].to_numpy()
        # "nearest": quartiles stay actual scores, never inf - inf = nan where never-learned examples are +inf.
        q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75], method="nearest")
        infinite = np.isinf(values).sum()
        lines.append(
            f"{label[:13]:<14}{len(rows):>7}{int(rows.kept.sum()):>6}{values.mean():>9.4g}{q25:>9.4g}"
            f"{median:>9.4g}{q75:>9.4g}  |{histogram(values[np.isfinite(values)], edges)}|"
            + (f" +inf: {infinite}" if infinite else "")
        )
    hardest = table.sort_values("rank").head(top)
    lines.append(f"hardest {len(hardest)}:")
    lines.append(f"{'rank':>6}  {'score':>9}  {'label':<14}path")
    lines += [f"{r.rank:>6}  {r.mean:>9.4g}  {str(r.label)[:13]:<14}{r.path}" for r in hardest.itertuples()]
    return "\n".join(lines)
