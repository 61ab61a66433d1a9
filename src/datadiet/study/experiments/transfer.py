"""Architecture transfer: every architecture trained on the subsets every architecture's scores chose,
with random subsets and full data as the reference."""

from ..experiment import Experiment, Figure, first_regime
from .pruning import full_data, retrain_result


def methods(score, arch, archs):
    return ["random"] + [score if by == arch else f"{score}-from-{by}" for by in archs]


def targets(study):
    if not study.active("transfer"):
        return []
    transfer = study.transfer
    dataset, score, keep = transfer["dataset"], transfer["score"], transfer["keep"]
    paths = []
    for arch in transfer["archs"]:
        paths += [
            retrain_result(study, dataset, arch, study.clean, m, keep, r)
            for m in methods(score, arch, transfer["archs"])
            for r in study.repeats
        ]
        paths += full_data(study, dataset, arch, study.clean)
    return paths


def accuracy_bars(results, path):
    """Accuracy of each architecture trained on subsets chosen by its own scores, by the other
    architecture's scores and at random (full data dashed)."""
    import numpy as np

    runs = results["transfer"]

    from ..figures import plt, save, sns

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
    save(fig, path)


def claims(runs, score, scale):
    """Scores from one architecture select subsets as good for another as its own scores: a row per
    (trained architecture, scoring architecture): no loss beyond the margin against its own (one-sided:
    better is transfer too)."""
    from ...stats import paired
    from ...verdicts import MARGIN, noninferiority, not_measured

    claim, theirs = "scores transfer across architectures", "similar pruning curves"
    if runs.empty:
        return [not_measured(claim, "paper", theirs, "experiments.transfer has no runs")]
    rows = []
    for arch in runs.arch.unique():
        mine = runs[runs.arch == arch]
        for method in sorted(m for m in mine.method.unique() if "-from-" in m):
            source = method.partition("-from-")[2]
            diffs = paired(mine, method, score)
            where = {"dataset": mine.dataset.iloc[0], "arch": arch, "scale": scale}
            claim_here = f"{claim} ({source} scores train {arch} as well as its own)"
            rows.append(noninferiority(claim_here, "paper", theirs, diffs, MARGIN, **where))
    return rows


def read(study, inputs, results):
    from ..collect import collect_runs

    return {"transfer": collect_runs(inputs["transfer"])}


def judge(results, regime):
    runs = results["transfer"]
    return claims(runs, results["study"].curve_score, first_regime(regime, runs))


FIGURE = Figure(
    "transfer", "Architecture transfer", "transfer", accuracy_bars, "experiments.transfer.activate is false"
)
EXPERIMENT = Experiment("transfer", {"transfer": targets}, read, (FIGURE,), judge, runs=(("transfer", "transfer"),))
