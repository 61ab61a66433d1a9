"""Linear mode connectivity (Fig. 4): two children spawned from one parent run at each spawn epoch,
trained on different data orders, and the error barrier between them on high-, low-score and random
example sets."""

from .. import layout

CHILDREN = (0, 1)


def targets(study):
    dataset = study.lmc["dataset"]
    return [study.path(layout.BARRIER, dataset=dataset, arch=study.arch_of(dataset), noise=study.clean)]


def lmc_barrier(table, path):
    """Fig. 4: error barrier between two children vs the epoch they were spawned at, on the
    highest-score, lowest-score and random example sets."""
    from ...figures import plt, save, sns

    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=table, x="spawn_epoch", y="barrier", hue="set", marker="o", ax=ax)
    ax.set(xlabel="spawn epoch t*", ylabel="error barrier at alpha = 1/2")
    save(fig, path)


def lmc_later(lmc):
    """High-score sets stay unstable (higher barrier) longer than low-score sets."""
    from ...claims import row

    by = lmc.pivot_table(index="spawn_epoch", columns="set", values="barrier")
    gap = by["high"] - by["low"]
    sign_test = (gap > 0).mean()
    return row(
        "high-EL2N sets become linearly connected later",
        "paper",
        f"barrier high - low {gap.mean():+.3f} on average over {len(gap)} spawn epochs "
        f"(higher at {sign_test:.0%} of them)",
        "low-score sets stable early, high-score sets late (Fig. 4)",
        gap.mean() > 0,
        max(sign_test, 1 - sign_test) >= 0.75,
        None,
        unsure="the sign changes across spawn epochs",
        why="holds when the high-score barrier is higher at >= 75% of spawn epochs",
    )
