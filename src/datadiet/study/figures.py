"""The plotting toolkit the figures share (each experiment module draws its own: pandas DataFrames in,
PNG files out; nothing here trains), and the scores grid of the `datadiet scores` tool."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: jobs run on headless nodes
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns  # noqa: F401  (for the experiments' figures: imported here, after the Agg backend)

from ..runtime import files

# A line per group with its min-max band over repeats, in panels that keep their own accuracy range.
PANELS_OF_LINES = {"kind": "line", "marker": "o", "errorbar": ("pi", 100), "height": 4, "aspect": 1.2,
                   "facet_kws": {"sharey": False}}  # fmt: skip


def full_data_per_method(table):
    """Rows of the "full" method copied to every other method, which they start (nothing pruned)."""
    full, pruned = table[table.method == "full"], table[table.method != "full"]
    return pd.concat([pruned] + [full.assign(method=m) for m in pruned.method.unique()])


def not_run(path, why):
    """The figure of an experiment the study did not run: a panel saying so, and why."""
    fig, ax = plt.subplots(figsize=(6, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, f"not run in this study: {why}", ha="center", va="center")
    save(fig, path)


def save(figure, path):
    files.atomic(path, lambda tmp: figure.savefig(tmp, dpi=110, bbox_inches="tight", format=Path(path).suffix[1:]))
    plt.close(figure)


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
    save(fig, path)
