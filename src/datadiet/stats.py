"""Pure statistics for comparing runs: means with one-sided t bounds, differences paired on the
repeat, rank correlations with Fisher-z bounds, and the decisions of the three kinds of test the
claims use (superiority, non-inferiority, equivalence) and of a threshold.

Each end of [ci_low, ci_high] is a one-sided `CONFIDENCE` bound, so a directional test is decided at
5% and the two ends together are the 90% interval of an equivalence's two one-sided tests. A decision
takes an `Estimate` and returns (verdict, reason). This module knows nothing of the study.
"""

from collections import namedtuple

import numpy as np

CONFIDENCE = 0.95  # of each one-sided bound
MIN_REPEATS = 3  # fewer repeats decide nothing

Estimate = namedtuple("Estimate", "estimate ci_low ci_high n")
NOTHING = Estimate(np.nan, np.nan, np.nan, 0)


def bounds(values):
    """Mean of `values` with its one-sided `CONFIDENCE` t bounds (nan when n < 2)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return NOTHING
    mean = float(values.mean())
    if n < 2:
        return Estimate(mean, np.nan, np.nan, n)
    half = stats.t.ppf(CONFIDENCE, n - 1) * values.std(ddof=1) / np.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


def select(runs, **where):
    """The rows of the table `runs` whose columns equal `where`'s values."""
    mask = np.ones(len(runs), dtype=bool)
    for key, value in where.items():
        mask &= (runs[key] == value).to_numpy()
    return runs[mask]


def paired(runs, a, b, **where):
    """Accuracy of method a minus method b, in points, per repeat that both ran (the same init seed)."""
    rows = select(runs, **where)
    return between(rows[rows.method == a], rows[rows.method == b])


def between(runs_a, runs_b):
    """Accuracy of runs_a minus runs_b, in points, per repeat (`run`) that both have."""
    by_run = [r.groupby("run").test_accuracy.mean() for r in (runs_a, runs_b)]
    return (100 * (by_run[0] - by_run[1])).dropna()


def spearman(a, b):
    """Spearman's rho with Fisher-z bounds (standard error 1.03/sqrt(n-3), Fieller et al. 1957)."""
    from scipy import stats

    rho, n = float(np.clip(stats.spearmanr(a, b).statistic, -0.999999, 0.999999)), len(a)  # finite z
    half = stats.norm.ppf(CONFIDENCE) * 1.03 / np.sqrt(max(n - 3, 1))
    return Estimate(float(rho), float(np.tanh(np.arctanh(rho) - half)), float(np.tanh(np.arctanh(rho) + half)), n)


def closest(values, target):
    """The value of `values` nearest `target`."""
    values = sorted(set(values))
    return min(values, key=lambda v: abs(v - target))


def superior(direction=1):
    """The decision that an estimate is positive (direction=1) or negative (-1)."""

    def decide(est):
        low, high = (est.ci_low, est.ci_high) if direction > 0 else (-est.ci_high, -est.ci_low)
        if low > 0:
            return "reproduced", ""
        if high < 0:
            return "not reproduced", "the interval excludes 0 in the opposite direction"
        return "inconclusive", "the interval holds 0"

    return decide


def equivalent(margin, unit):
    """The decision that an estimate lies within +-`margin` (two one-sided tests)."""

    def decide(est):
        if -margin < est.ci_low and est.ci_high < margin:
            return "reproduced", f"equivalent within +-{margin:g} {unit}"
        if est.ci_low > margin or est.ci_high < -margin:
            return "not reproduced", f"different by more than {margin:g} {unit}"
        return "inconclusive", f"underpowered: the interval straddles the margin +-{margin:g} {unit}"

    return decide


def noninferior(margin, unit):
    """The decision that an estimate lies above -`margin` (one one-sided test)."""

    def decide(est):
        if est.ci_low > -margin:
            return "reproduced", f"no loss beyond {margin:g} {unit}"
        if est.ci_high < -margin:
            return "not reproduced", f"a loss of more than {margin:g} {unit}"
        return "inconclusive", f"the interval holds the margin -{margin:g} {unit}"

    return decide


def reaches(level):
    """The decision that a statistic (a rank correlation, with bounds) reaches `level`."""

    def decide(est):
        if est.ci_low >= level:
            return "reproduced", f"holds at >= {level:g}"
        if est.ci_high < level:
            return "not reproduced", f"below {level:g}"
        return "inconclusive", f"the interval holds {level:g}"

    return decide
