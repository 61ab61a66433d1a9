"""Scores: full-data training runs per seed (checkpoints, forgetting and AUM), GraNd and EL2N from their
checkpoints, the input-norm control, and the mean over seeds."""

from .. import layout, names
from ..experiment import Experiment, Figure


def targets(study):
    """Clean: every score (rank correlations, seeds); noisy: the scores the noisy experiments use."""
    paths = []
    for dataset in study.datasets:
        runs = {"dataset": dataset, "arch": study.arch_of(dataset)}
        paths += [study.path(layout.MEAN_SCORES, **runs, noise=study.clean, score=s) for s in study.all_scores]
        noisy = [(n, s) for n in study.noisy for s in study.noisy_scores]
        paths += [study.path(layout.MEAN_SCORES, **runs, noise=n, score=s) for n, s in noisy]
    return paths


def labels(study):
    return [study.path(layout.LABELS, dataset=d, noise=n) for d in study.datasets for n in study.noise]


def seed_agreement(per_seed):
    """How well m seeds pin a score down, per score: the Spearman correlation between the means of two
    DISJOINT groups of m seeds (every split of the first 2m seeds in half, averaged), for m up to half
    the seeds. `per_seed`: {score: DataFrame with one column per seed}."""
    from itertools import combinations

    import pandas as pd
    from scipy.stats import spearmanr

    rows = []
    for name, table in per_seed.items():
        for m in range(1, table.shape[1] // 2 + 1):
            seeds = range(2 * m)
            halves = [h for h in combinations(seeds, m) if 0 in h]  # each split once
            rhos = [
                spearmanr(
                    table.iloc[:, list(h)].mean(axis=1), table.iloc[:, [s for s in seeds if s not in h]].mean(axis=1)
                ).statistic
                for h in halves
            ]
            rows.append({"score": names.label(name), "seeds": m, "spearman": sum(rhos) / len(rhos)})
    return pd.DataFrame(rows, columns=["score", "seeds", "spearman"])


def spearman_brown(rho, m):
    """Agreement of two m-seed means predicted from the one-seed agreement `rho` (Spearman-Brown; for
    rho <= 0 the seeds share no signal, and averaging more of them finds none: 0)."""
    rho = max(rho, 0.0)
    return m * rho / (1 + (m - 1) * rho)


def spearman_heatmap(results, path):
    """Rank correlation between scores, annotated."""
    from ..figures import plt, save, sns

    correlations = results["correlations"]

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
    save(fig, path)


def seeds(results, path, up_to=10):
    """How many seeds are enough: agreement of two disjoint m-seed means (measured), and its
    Spearman-Brown extrapolation from one seed to `up_to` seeds."""
    import numpy as np

    from ..figures import plt, save, sns

    agreement = results["agreement"]

    fig, ax = plt.subplots(figsize=(6, 4))
    labels = list(agreement.score.unique())
    colors = dict(zip(labels, sns.color_palette(n_colors=len(labels))))
    sns.lineplot(data=agreement, x="seeds", y="spearman", hue="score", palette=colors, marker="o", ax=ax)
    m = np.arange(1, up_to + 1)
    for label, rows in agreement[agreement.seeds == 1].groupby("score"):
        ax.plot(m, spearman_brown(rows.spearman.iloc[0], m), linestyle=":", color=colors[label])
    ax.set(xlabel="seeds averaged in each of two disjoint groups", ylabel="Spearman between the two group means")
    ax.set_title("measured (solid) and Spearman-Brown from one seed (dotted)", fontsize=9)
    ax.xaxis.get_major_locator().set_params(integer=True)
    save(fig, path)


def claims(scores, main, scale=None):
    """Rank correlations of the clean mean scores of the main (dataset, architecture)."""
    from ...stats import spearman
    from ...verdicts import threshold

    where = {"dataset": main[0], "arch": main[1], "scale": scale}
    epochs = {kind: {s.epoch for s in map(names.Score.parse, scores) if s.kind == kind} for kind in names.AT_EPOCH}
    common = sorted(epochs["grand"] & epochs["el2n"])
    rows = []
    if common:
        t = max(common)
        rho = spearman(scores[f"grand_e{t}"], scores[f"el2n_e{t}"])
        theirs = "0.985 at epoch 20; 0.94 at epoch 1 (proxy)"
        rows.append(threshold(f"GraNd@{t} and EL2N@{t} rank alike", "reproduction", theirs, rho, 0.8, **where))
    if {"grand_e0", "input_norm"} <= set(scores):
        # The reproduction found this architecture-dependent, so a narrow net may not show it.
        rho = spearman(scores["grand_e0"], scores["input_norm"])
        theirs = "0.963 (ResNet18); 0.39 (proxy net): architecture-dependent"
        rows.append(threshold("GraNd at init tracks input norm", "reproduction", theirs, rho, 0.8, **where))
    return rows


def spearman_matrix(table):
    import pandas as pd
    from scipy.stats import spearmanr

    rho = spearmanr(table.to_numpy()).statistic
    return pd.DataFrame(rho, index=table.columns, columns=table.columns)


def correlation_tables(results):
    """Our rank correlations, and the reproduction's beside them."""
    from .. import published

    ours = results["correlations"].round(3).rename(index=names.label, columns=names.label)
    theirs = "".join(
        f"<li>{names.label(a)} vs {names.label(b)}: {rho}</li>"
        for (a, b), rho in published.REPRODUCTION_SPEARMAN.items()
    )
    return f"{ours.to_html()}\n<p>Published (reproduction, CIFAR-10, ResNet18):</p><ul>{theirs}</ul>"


def read(study, inputs, results):
    """The mean scores of every (dataset, arch, noise) (`means`, which label noise reads too); those of the
    main dataset's clean labels, their rank correlations and how well the seeds agree."""
    from ..collect import collect_scores

    means, per_seed, score_runs = collect_scores(inputs["scores"])
    main = (*results["main"], results["clean"])
    clean = means[main]
    agreement = seed_agreement(per_seed.get(main, {}))
    return {"means": means, "clean_scores": clean, "score_runs": score_runs, "agreement": agreement,
            "correlations": spearman_matrix(clean)}  # fmt: skip


def judge(results, regime):
    return claims(results["clean_scores"], results["main"], regime(*results["main"]))


EXPERIMENT = Experiment(
    "scores",
    inputs={"scores": targets},
    read=read,
    figures=(
        Figure("spearman", "Rank correlation of scores", "correlations", spearman_heatmap, below=correlation_tables),
        Figure("seeds", "How many seeds", "agreement", seeds),
    ),
    claims=judge,
)
