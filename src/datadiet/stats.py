"""Pure statistics for comparing runs: means with one-sided t bounds, differences paired on the
repeat, rank correlations with Fisher-z bounds, the one-sided test of each claim (its p-value, and
the smallest effect it could detect) and Holm's adjustment of a family of them.

Each end of [ci_low, ci_high] is a one-sided `CONFIDENCE` bound. Every claim is one-sided: the
estimate lies beyond a boundary (0 for superiority, -margin for "no loss", +margin for "does not
beat", a level for a correlation) in one direction; its `Test` holds the p-value of that side and of
the other. This module knows nothing of the study.
"""

from collections import namedtuple

import numpy as np

CONFIDENCE = 0.95  # of each one-sided bound
ALPHA = 1 - CONFIDENCE  # the level of every test, and the family-wise rate of a family of them
POWER = 0.8  # of the detectable effect
MIN_REPEATS = 3  # fewer repeats decide nothing

Estimate = namedtuple("Estimate", "estimate ci_low ci_high n")
NOTHING = Estimate(np.nan, np.nan, np.nan, 0)

# A one-sided test that the true value lies beyond `boundary` in `direction` (+1: above, -1: below):
# p of that side, p_against of the other, the standard error and degrees of freedom (inf: normal) of
# its statistic, on Fisher's z scale where `fisher`.
Test = namedtuple("Test", "boundary direction p p_against se df fisher")


def t_cdf(t, df):
    """Student's t distribution function (df inf: the normal's): scipy.stats.t.cdf's own, without the
    generic distribution's overhead (claims tests simulate tens of thousands of rows)."""
    from scipy import special

    return float(special.ndtr(t) if np.isinf(df) else special.stdtr(df, t))


def t_quantile(q, df):
    from scipy import special

    return float(special.ndtri(q) if np.isinf(df) else special.stdtrit(df, q))


def bounds(values):
    """Mean of `values` with its one-sided `CONFIDENCE` t bounds (nan when n < 2)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return NOTHING
    mean = float(values.mean())
    if n < 2:
        return Estimate(mean, np.nan, np.nan, n)
    half = t_quantile(CONFIDENCE, n - 1) * values.std(ddof=1) / np.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


def mean_beyond(values, boundary, direction):
    """The one-sided t test that the mean of `values` lies beyond `boundary` in `direction`. Values
    without spread have no t statistic: their exact sign-flip test decides instead (n identical
    differences give p = 2^-n at best, never a zero-width interval's certainty)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return Test(boundary, direction, np.nan, np.nan, np.nan, n - 1, False)
    shifted = direction * (values - boundary)
    se = shifted.std(ddof=1) / np.sqrt(n)
    if se <= 1e-9 * max(1.0, abs(shifted.mean())):
        return Test(boundary, direction, *sign_flip_of_identical(shifted.mean(), n), 0.0, n - 1, False)
    t = shifted.mean() / se
    return Test(boundary, direction, t_cdf(-t, n - 1), t_cdf(t, n - 1), float(se), n - 1, False)


def sign_flip_of_identical(value, n):
    """Exact one-sided p-values (above 0, below 0) of the mean of n identical values under the sign-flip
    null (each value's sign a fair coin): of the 2^n flips only the one keeping every sign reaches a
    positive mean, every flip reaches at most it; 0 gives 1 either way."""
    if value > 0:
        return 2.0**-n, 1.0
    if value < 0:
        return 1.0, 2.0**-n
    return 1.0, 1.0


def slope_beyond(x, y, boundary=0.0, direction=1):
    """The slope of y on x with its one-sided t bounds (n - 2 df) and its test: each point is one unit."""
    from scipy import stats

    fit = stats.linregress(x, y)
    df = len(x) - 2
    half = t_quantile(CONFIDENCE, df) * fit.stderr
    t = direction * (fit.slope - boundary) / fit.stderr
    est = Estimate(float(fit.slope), float(fit.slope - half), float(fit.slope + half), len(x))
    return est, Test(boundary, direction, t_cdf(-t, df), t_cdf(t, df), float(fit.stderr), df, False)


def spearman(a, b):
    """Spearman's rho with Fisher-z bounds (standard error 1.03/sqrt(n-3), Fieller et al. 1957)."""
    from scipy import stats

    rho, n = float(np.clip(stats.spearmanr(a, b).statistic, -0.999999, 0.999999)), len(a)  # finite z
    half = stats.norm.ppf(CONFIDENCE) * fisher_se(n)
    return Estimate(float(rho), float(np.tanh(np.arctanh(rho) - half)), float(np.tanh(np.arctanh(rho) + half)), n)


def fisher_se(n):
    return 1.03 / np.sqrt(max(n - 3, 1))


def correlation_reaches(est, level):
    """The one-sided test, on Fisher's z, that a rank correlation (an `Estimate` of `spearman`) is above `level`."""
    se = fisher_se(est.n)
    z = (np.arctanh(est.estimate) - np.arctanh(level)) / se
    return Test(level, 1, t_cdf(-z, np.inf), t_cdf(z, np.inf), float(se), np.inf, True)


def proportion_reaches(hits, k, level):
    """The exact one-sided binomial test that a proportion of `hits` in `k` is above `level`; its
    standard error (under the null) serves the detectable effect."""
    from scipy import stats

    p, p_against = (stats.binomtest(hits, k, level, alternative=side).pvalue for side in ("greater", "less"))
    return Test(level, 1, float(p), float(p_against), float(np.sqrt(level * (1 - level) / k)), np.inf, False)


def detectable(test, level):
    """The true value at which `test`, decided at `level`, says its side with `POWER` (nan where the
    test has no spread to judge by)."""
    if not test.se > 0:
        return np.nan
    shift = test.direction * (t_quantile(1 - level, test.df) + t_quantile(POWER, test.df)) * test.se
    if test.fisher:
        return float(np.tanh(np.arctanh(test.boundary) + shift))
    return float(test.boundary + shift)


def holm(p_values):
    """Holm's step-down adjusted p-values: rejecting where adjusted <= ALPHA holds the family-wise
    error rate at ALPHA under any dependence between the tests. Nan (no test) stays nan, outside the family."""
    p = np.asarray(p_values, dtype=float)
    adjusted, tested = np.full(p.shape, np.nan), ~np.isnan(p)
    m = int(tested.sum())
    order = np.argsort(p[tested], kind="stable")
    steps = np.maximum.accumulate((m - np.arange(m)) * p[tested][order])
    ranked = np.empty(m)
    ranked[order] = np.minimum(steps, 1.0)
    adjusted[tested] = ranked
    return adjusted


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
    """Accuracy of runs_a minus runs_b, in points, per repeat (`run`) that both have. Two runs of one
    repeat on a side are an error; `attrs` names the repeats without a twin ("unmatched") and says
    "this subset" ("scope") where a side retrained one fixed subset in every repeat, else "method"."""
    for side in (runs_a, runs_b):
        twice = side[side.run.duplicated(keep=False)]
        if not twice.empty:
            ids = twice["run_id"] if "run_id" in twice else twice.index
            raise ValueError(
                f"repeats {sorted(set(twice.run))} have more than one run each: {', '.join(map(str, ids))}"
            )
    a, b = (side.set_index("run").test_accuracy.astype(float) for side in (runs_a, runs_b))
    diffs = (100 * (a - b)).dropna()
    matched = [side[side.run.isin(diffs.index)] for side in (runs_a, runs_b)]
    diffs.attrs = {
        "unmatched": sorted(set(a.index) ^ set(b.index)),
        "scope": "this subset" if any(map(one_subset, matched)) else "method",
    }
    return diffs


def one_subset(runs):
    """Whether every repeat of `runs` selected by the same scoring runs: one subset retrained, so that
    their spread is retraining's alone, not the score's."""
    chosen_by = [tuple(r) for r in runs.get("score_runs", []) if isinstance(r, list) and r]
    return len(runs) >= 1 and len(chosen_by) == len(runs) and len(set(chosen_by)) == 1


def closest(values, target):
    """The value of `values` nearest `target`."""
    values = sorted(set(values))
    return min(values, key=lambda v: abs(v - target))
