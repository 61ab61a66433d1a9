"""Label noise: where the corrupted examples fall in the score ranking, and how pruning copes with
them. Its training runs are the pruning curve's at the noise levels (see pruning.curve_targets), so
it has no targets of its own."""

from .. import names


def corrupted_in_top(scores, corrupted):
    """Fraction of the corrupted examples among the top-k of each score, for k from 2% to 100% of N."""
    import numpy as np
    import pandas as pd

    rows = []
    for name, values in scores.items():
        order = np.argsort(-np.asarray(values), kind="stable")
        for f in np.linspace(0.02, 1, 50):
            top = order[: max(1, round(f * len(order)))]
            rows.append({"score": names.label(name), "top": f, "corrupted": corrupted[top].mean()})
    return pd.DataFrame(rows)


def noise_ranking(table, path):
    """Where the corrupted examples fall: the share of corrupted labels among the k highest-scoring
    examples; the noise rate (dotted) is what a random ranking gives."""
    from ...figures import save, sns

    grid = sns.relplot(data=table, x="top", y="corrupted", hue="score", col="noise", kind="line", height=4, aspect=1.2)
    for noise, ax in grid.axes_dict.items():
        ax.axhline(float(noise), color="gray", linestyle=":", label="random ranking")
    grid.set_axis_labels("top fraction of the ranking (hardest first)", "fraction corrupted")
    save(grid.figure, path)


def grand_init_under_noise(runs, noisy, small):
    from ...claims import closest, difference, measured, row

    claim = f"GraNd at init is worse than random under {noisy:.0%} label noise"
    tried = runs[(runs.method == "grand_e0") & (runs.noise == noisy)]
    if tried.empty:
        return row(
            claim, "paper", "not run", "worse than random", None, why="add grand_e0 to noise.methods to measure it"
        )
    keep = closest(tried.keep, 0.5)
    diff, spread = difference(runs, "grand_e0", "random", noise=noisy, keep=keep)
    claim = f"{claim} ({keep:.0%} kept)"
    return row(claim, "paper", measured(diff, spread), "worse than random", diff < 0, abs(diff) > spread, small)


def noisy_ranked_hardest(scores, corrupted, score, noisy):
    """The corrupted examples gather at the top of the score ranking."""
    import numpy as np

    from ...claims import row

    order = np.argsort(-scores[score].to_numpy(), kind="stable")
    top = order[: max(1, round(noisy * len(order)))]
    share = corrupted[top].mean()
    return row(
        f"corrupted labels rank hardest by {names.label(score)} ({noisy:.0%} noise)",
        "paper",
        f"{share:.0%} of the top {noisy:.0%} are corrupted",
        f"far above the noise rate {noisy:.0%}",
        share > 2 * noisy,
        True,
        None,
        "holds when the share exceeds twice the noise rate",
    )
