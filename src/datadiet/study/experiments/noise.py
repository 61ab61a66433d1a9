"""Label noise: where the corrupted examples fall in the score ranking, and how pruning copes with
them. Its training runs are the pruning curve's at the noise levels (see pruning.curve_targets), so
it has no targets of its own."""

from .. import names
from ..experiment import Experiment, Figure
from .scores import labels as score_labels, targets as score_targets


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


def noise_ranking(results, path):
    """Where the corrupted examples fall: the share of corrupted labels among the k highest-scoring
    examples; the noise rate (dotted) is what a random ranking gives."""
    from ..figures import save, sns

    table = results["ranking"]

    grid = sns.relplot(data=table, x="top", y="corrupted", hue="score", col="noise", kind="line", height=4, aspect=1.2)
    for noise, ax in grid.axes_dict.items():
        ax.axhline(float(noise), color="gray", linestyle=":", label="random ranking")
    grid.set_axis_labels("top fraction of the ranking (hardest first)", "fraction corrupted")
    save(grid.figure, path)


def pruning_claims(runs, clean, scale, dataset, arch):
    """GraNd at init under the first noise level: worse than random."""
    from ...stats import closest, paired
    from ...verdicts import not_measured, superiority

    noisy = sorted(set(runs.noise) - {clean})[:1]
    if not noisy:
        claim, why = "GraNd at init is worse than random under label noise", "noise.levels has no level above 0"
        return [not_measured(claim, "paper", "worse than random", why, dataset=dataset, arch=arch)]
    rows = []
    for level in noisy:
        claim = f"GraNd at init is worse than random under {level:.0%} label noise"
        tried = runs[(runs.method == "grand_e0") & (runs.noise == level)]
        where = {"dataset": dataset, "arch": arch}
        if tried.empty:
            rows.append(not_measured(claim, "paper", "worse than random", "add grand_e0 to noise.methods", **where))
            continue
        keep = closest(tried.keep, 0.5)
        diffs = paired(runs, "grand_e0", "random", noise=level, keep=keep)
        claim = f"{claim} ({keep:.0%} kept)"
        rows.append(superiority(claim, "paper", "worse than random", diffs, direction=-1, scale=scale, **where))
    return rows


def ranking_claims(noisy_scores, corrupted, score, main, scale=None):
    """At the first noise level: most corrupted labels rank in the top k of the score, k = their number."""
    from ...verdicts import not_measured

    dataset, arch = main
    if not noisy_scores:
        claim, why = "corrupted labels rank hardest", "noise.levels has no level above 0"
        return [not_measured(claim, "paper", "most at the top", why, dataset=dataset, arch=arch)]
    rows = []
    for level in sorted(noisy_scores)[:1]:
        claim = f"corrupted labels rank hardest by {names.label(score)} ({level:.0%} noise)"
        if score not in noisy_scores[level]:
            why = f"{score} was not computed under noise"
            rows.append(not_measured(claim, "paper", "most at the top", why, dataset=dataset, arch=arch))
            continue
        values = noisy_scores[level][score].to_numpy()
        rows.append(ranked_hardest(claim, values, corrupted[level], {"dataset": dataset, "arch": arch, "scale": scale}))
    return rows


def ranked_hardest(claim, values, corrupted, where):
    """Precision (= recall) at k, k the number of corrupted labels, with exact binomial bounds, judged
    against "most" (0.5); AUROC (Mann-Whitney, Hanley-McNeil bounds) beside it."""
    import numpy as np
    from scipy import stats

    from ...stats import CONFIDENCE, Estimate, proportion_reaches
    from ...verdicts import threshold

    k = int(corrupted.sum())
    top = np.argsort(-values, kind="stable")[:k]
    hits = int(corrupted[top].sum())
    interval = stats.binomtest(hits, k).proportion_ci(2 * CONFIDENCE - 1, method="exact")
    precision = Estimate(hits / k, interval.low, interval.high, k)
    auroc = stats.mannwhitneyu(values[corrupted], values[~corrupted]).statistic / (k * (~corrupted).sum())
    q1, q2 = auroc / (2 - auroc), 2 * auroc**2 / (1 + auroc)
    n_pos, n_neg = k, int((~corrupted).sum())
    se = np.sqrt(
        (auroc * (1 - auroc) + (n_pos - 1) * (q1 - auroc**2) + (n_neg - 1) * (q2 - auroc**2)) / (n_pos * n_neg)
    )
    half = stats.norm.ppf(CONFIDENCE) * se
    describe = f"precision = recall at k={k}; AUROC {auroc:.3f} [{auroc - half:.3f}, {auroc + half:.3f}]"
    theirs = "most corrupted examples at the top of the ranking"
    test = proportion_reaches(hits, k, 0.5)
    return threshold(claim, "paper", theirs, precision, 0.5, describe=describe, test=test, **where)


def read(study, inputs, results):
    """The main dataset's noisy mean scores (from the scores experiment's `means`), which labels were
    corrupted at each level and where they rank."""
    import pandas as pd

    from ..collect import collect_corrupted

    (dataset, arch), clean = results["main"], results["clean"]
    corrupted = {level: c for (d, level), c in collect_corrupted(inputs["labels"]).items() if d == dataset}
    noisy = {level: m for (d, a, level), m in results["means"].items() if (d, a) == (dataset, arch) and level != clean}
    ranking = [corrupted_in_top(noisy[level], corrupted[level]).assign(noise=level) for level in noisy]
    return {"noisy_scores": noisy, "corrupted": corrupted, "ranking": pd.concat([pd.DataFrame()] + ranking)}


def judge(results, regime):
    main, score = results["main"], results["study"].curve_score
    return ranking_claims(results["noisy_scores"], results["corrupted"], score, main, regime(*main))


NOT_RUN = "noise.levels has no level above 0"
TITLE = "Label noise: where the corrupted examples rank"
EXPERIMENT = Experiment(
    "noise",
    inputs={"scores": score_targets, "labels": score_labels},
    read=read,
    figures=(Figure("noise_ranking", TITLE, "ranking", noise_ranking, NOT_RUN),),
    claims=judge,
)
