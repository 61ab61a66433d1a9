"""Figures from result tables (pandas DataFrames in, PNG files out); nothing here trains."""
import matplotlib

matplotlib.use("Agg")  # files only: jobs run on headless nodes
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def display_name(score):
    """'el2n_e20' -> 'EL2N@20', as the paper writes it."""
    kind, _, epoch = score.partition("_e")
    names = {"el2n": "EL2N", "grand": "GraNd", "input_norm": "input norm"}
    if epoch.isdigit():
        return f"{names[kind]}@{epoch}"
    return names.get(score, score)


def full_data_per_method(table):
    """Rows of the "full" method copied to every other method, which they start (nothing pruned)."""
    full, pruned = table[table.method == "full"], table[table.method != "full"]
    return pd.concat([pruned] + [full.assign(method=m) for m in pruned.method.unique()])


def pruning_curve(runs, path):
    """Final test accuracy vs fraction pruned, a line per method with a min-max band over repeats,
    the full-data accuracy as a dashed line; one panel per label-noise level."""
    curves = full_data_per_method(runs).assign(
        pruned=lambda d: 1 - d.keep, accuracy=lambda d: 100 * d.test_accuracy,
        selection=lambda d: d.method.map(display_name))
    grid = sns.relplot(data=curves, x="pruned", y="accuracy", hue="selection", col="noise", kind="line",
                       marker="o", errorbar=("pi", 100), height=4, aspect=1.3, facet_kws={"sharey": False})
    full = runs[runs.method == "full"].groupby("noise").test_accuracy.mean()
    for noise, ax in grid.axes_dict.items():
        if noise in full:
            ax.axhline(100 * full[noise], color="black", linestyle="--", label="full data")
        ax.set_xlabel("fraction of training set pruned")
        ax.set_ylabel("final test accuracy (%)")
    grid.savefig(path, dpi=120)
    plt.close(grid.figure)


def spearman_heatmap(correlations, path):
    """Rank correlation between scores, annotated."""
    labels = [display_name(c) for c in correlations.columns]
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2, 0.9 * len(labels) + 1.5))
    sns.heatmap(correlations.to_numpy(), xticklabels=labels, yticklabels=labels, annot=True, fmt=".2f",
                cmap="vlag", vmin=-1, vmax=1, square=True, ax=ax)
    ax.set_title("Spearman rank correlation of scores")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
