"""Figures from result tables (pandas DataFrames in, PNG files out); nothing here trains."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: jobs run on headless nodes
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy.stats import spearmanr

from . import results
from .study import names

# A line per group with its min-max band over repeats, in panels that keep their own accuracy range.
PANELS_OF_LINES = {"kind": "line", "marker": "o", "errorbar": ("pi", 100), "height": 4, "aspect": 1.2,
                   "facet_kws": {"sharey": False}}  # fmt: skip


def full_data_per_method(table):
    """Rows of the "full" method copied to every other method, which they start (nothing pruned)."""
    full, pruned = table[table.method == "full"], table[table.method != "full"]
    return pd.concat([pruned] + [full.assign(method=m) for m in pruned.method.unique()])


def _save(figure, path):
    results.atomic(path, lambda tmp: figure.savefig(tmp, dpi=110, bbox_inches="tight", format=Path(path).suffix[1:]))
    plt.close(figure)


def pruning_curve(runs, path):
    """Final test accuracy vs fraction pruned, a line per method with a min-max band over repeats,
    the full-data accuracy as a dashed line; a panel per dataset and label-noise level."""
    curves = full_data_per_method(runs).assign(
        pruned=lambda d: 1 - d.keep,
        accuracy=lambda d: 100 * d.test_accuracy,
        selection=lambda d: d.method.map(names.label),
        panel=lambda d: d.dataset + ", noise " + d.noise.astype(str),
    )
    grid = sns.relplot(data=curves, x="pruned", y="accuracy", hue="selection", col="panel", **PANELS_OF_LINES)
    full = runs[runs.method == "full"].assign(panel=lambda d: d.dataset + ", noise " + d.noise.astype(str))
    full = full.groupby("panel").test_accuracy.mean()
    for panel, ax in grid.axes_dict.items():
        ax.axhline(100 * full[panel], color="black", linestyle="--", label="full data")
        ax.set_xlabel("fraction of training set pruned")
        ax.set_ylabel("final test accuracy (%)")
    _save(grid.figure, path)


def how_early(runs, path):
    """Fig. 1 top: final accuracy at one kept fraction vs the epoch the score was computed at;
    forgetting (end of training) and random as horizontal lines."""
    timed = runs[runs.method.str.match(r"^(grand|el2n)_e\d+$")].assign(
        epoch=lambda d: d.method.str.split("_e").str[1].astype(int),
        score=lambda d: d.method.str.split("_e").str[0].map({"grand": "GraNd", "el2n": "EL2N"}),
        accuracy=lambda d: 100 * d.test_accuracy,
    )
    datasets = list(runs.dataset.unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        sns.lineplot(
            data=timed[timed.dataset == dataset],
            x="epoch",
            y="accuracy",
            hue="score",
            marker="o",
            errorbar=("pi", 100),
            ax=ax,
        )
        for method, color in (("forgetting", "tab:green"), ("random", "gray")):
            level = runs[(runs.dataset == dataset) & (runs.method == method)].test_accuracy.mean()
            ax.axhline(100 * level, color=color, linestyle="--", label=method)
        keep = runs[runs.dataset == dataset].keep.iloc[0]
        ax.set(
            title=f"{dataset}: {keep:.0%} kept",
            xlabel="epoch t the score was computed at",
            ylabel="final test accuracy (%)",
        )
        ax.legend()
    _save(fig, path)


def sliding_window(windows, path):
    """Fig. 2: accuracy of a window of the score ranking vs where the window starts (0: easiest
    examples, 1: the hardest window), a line per kept fraction, a panel per noise level."""
    data = windows.assign(accuracy=lambda d: 100 * d.test_accuracy, kept=lambda d: d.keep.map("{:.0%}".format))
    grid = sns.relplot(data=data, x="start", y="accuracy", hue="kept", col="noise", **PANELS_OF_LINES)
    grid.set_axis_labels("window start (fraction of the ranking, easiest = 0)", "final test accuracy (%)")
    _save(grid.figure, path)


TOP_FRACTIONS = np.linspace(0.02, 1, 50)


def corrupted_in_top(scores, corrupted, fractions=TOP_FRACTIONS):
    """Fraction of the corrupted examples among the top-k of each score, for k as fractions of N."""
    rows = []
    for name, values in scores.items():
        order = np.argsort(-np.asarray(values), kind="stable")
        for f in fractions:
            top = order[: max(1, round(f * len(order)))]
            rows.append({"score": names.label(name), "top": f, "corrupted": corrupted[top].mean()})
    return pd.DataFrame(rows)


def noise_ranking(table, path):
    """Where the corrupted examples fall: the share of corrupted labels among the k highest-scoring
    examples; the noise rate (dotted) is what a random ranking gives."""
    grid = sns.relplot(data=table, x="top", y="corrupted", hue="score", col="noise", kind="line", height=4, aspect=1.2)
    for noise, ax in grid.axes_dict.items():
        ax.axhline(float(noise), color="gray", linestyle=":", label="random ranking")
    grid.set_axis_labels("top fraction of the ranking (hardest first)", "fraction corrupted")
    _save(grid.figure, path)


def transfer(runs, path):
    """Architecture transfer: accuracy of each architecture trained on subsets chosen by its own
    scores, by the other architecture's scores and at random (full data dashed)."""
    data = runs[runs.method != "full"].assign(
        accuracy=lambda d: 100 * d.test_accuracy,
        subset=lambda d: np.where(
            d.method == "random",
            "random",
            "scores from " + d.method.str.partition("-from-")[2].replace("", np.nan).fillna(d.arch),
        ),
    )
    fig, ax = plt.subplots(figsize=(6.5, 4))
    sns.barplot(data=data, x="arch", y="accuracy", hue="subset", errorbar=("pi", 100), ax=ax)
    for i, arch in enumerate(sorted(data.arch.unique(), key=list(data.arch.unique()).index)):
        full = runs[(runs.arch == arch) & (runs.method == "full")].test_accuracy.mean()
        ax.hlines(100 * full, i - 0.4, i + 0.4, color="black", linestyle="--")
    ax.set(
        xlabel="architecture trained",
        ylabel="final test accuracy (%)",
        title=f"{data.keep.iloc[0]:.0%} kept; dashed: full data",
    )
    _save(fig, path)


def spearman_heatmap(correlations, path):
    """Rank correlation between scores, annotated."""
    labels = [names.label(c) for c in correlations.columns]
    fig, ax = plt.subplots(figsize=(1.0 * len(labels) + 2, 0.85 * len(labels) + 1.5))
    sns.heatmap(
        correlations.to_numpy(),
        xticklabels=labels,
        yticklabels=labels,
        annot=True,
        fmt=".2f",
        cmap="vlag",
        vmin=-1,
        vmax=1,
        square=True,
        ax=ax,
    )
    ax.set_title("Spearman rank correlation of scores")
    _save(fig, path)


def seed_agreement(per_seed):
    """Spearman between the mean of the first k seeds and the mean of all seeds, per score.
    `per_seed`: {score: DataFrame with one column per seed}."""
    rows = []
    for name, table in per_seed.items():
        full = table.mean(axis=1)
        for k in range(1, table.shape[1] + 1):
            rows.append(
                {
                    "score": names.label(name),
                    "seeds": k,
                    "spearman": spearmanr(table.iloc[:, :k].mean(axis=1), full).statistic,
                }
            )
    return pd.DataFrame(rows)


def seeds(agreement, path):
    """How many seeds are enough: rank agreement of a k-seed mean with the all-seed mean."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=agreement, x="seeds", y="spearman", hue="score", marker="o", ax=ax)
    ax.axhline(0.75, color="gray", linestyle=":", label="paper: 1 run vs 10-run mean")
    ax.set(xlabel="seeds averaged", ylabel="Spearman with the all-seed mean")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    _save(fig, path)


def ntk_velocity(table, path):
    """Fig. 3: kernel velocity of blocks of examples sorted by score (easiest left), clean and noisy."""
    data = table.assign(rank=lambda d: d.first_rank / d.num_examples, labels=lambda d: "noise " + d.noise.astype(str))
    grid = sns.relplot(
        data=data, x="rank", y="velocity", hue="labels", col="epoch", kind="line", marker="o", height=4, aspect=1.2
    )
    grid.set_axis_labels("block start (fraction of the score ranking, easiest = 0)", "NTK velocity (cosine distance)")
    _save(grid.figure, path)


def lmc_barrier(table, path):
    """Fig. 4: error barrier between two children vs the epoch they were spawned at, on the
    highest-score, lowest-score and random example sets."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=table, x="spawn_epoch", y="barrier", hue="set", marker="o", ax=ax)
    ax.set(xlabel="spawn epoch t*", ylabel="error barrier at alpha = 1/2")
    _save(fig, path)


def score_grid(table, path, count=8):
    """The `count` hardest and `count` easiest images of a prune scores.csv (columns path, label, mean,
    rank), a row each, titled with their label and mean score."""
    from PIL import Image

    count = max(1, min(count, len(table) // 2))
    ordered = table.sort_values("rank")
    rows = {"hardest": ordered.head(count), "easiest": ordered.tail(count).iloc[::-1]}
    fig, axes = plt.subplots(2, count, figsize=(1.6 * count, 4.4), squeeze=False, layout="constrained")
    for ax_row, (name, images) in zip(axes, rows.items()):
        for ax, image in zip(ax_row, images.itertuples()):
            with Image.open(image.path) as picture:
                ax.imshow(picture.convert("RGB"))
            ax.set_title(f"#{image.rank} {image.label}\n{image.mean:.3g}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(name)
    fig.suptitle("hardest (top, rank 1 first) and easiest (bottom, easiest first) by mean score", fontsize=10)
    _save(fig, path)
