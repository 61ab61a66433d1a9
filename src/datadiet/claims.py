"""The claims table: each qualitative claim of the paper and of the reproduction, our estimate with its
interval beside their number, and a verdict computed from the results, one row per (dataset,
architecture).

Methods are compared by differences paired on the repeat (runs of the same repeat share the init
seed), with t-based bounds: each end of [ci_low, ci_high] is a one-sided 95% confidence bound, so a
directional claim is decided at 5% (the two ends together are the 90% interval that the two one-sided
tests of an equivalence use). Verdicts:
- "reproduced": the bound on the claimed side excludes 0 (an absence claim: the interval lies inside
  the stated margin);
- "not reproduced": the other bound excludes 0 the other way (absence: the interval lies outside the
  margin);
- "inconclusive": the interval holds 0 (absence: it straddles the margin);
- "underpowered": fewer than 3 repeats; nothing is called;
- "not measured": the study did not run it.
Every verdict says the regime it was measured in, whatever the outcome: where the size sweep ran at
the study's own size, the regime it measured there (keep-hard: keeping the hardest beats random;
keep-easy: keeping the easiest does; random-best: random beats both); elsewhere, "below paper scale"
when full data falls short of the paper's accuracy. Nothing here assumes a regime. The claims
themselves live with their experiment (study/experiments/*.py); this module holds the toolkit they
share and `table`, which gathers them.
"""

from collections import namedtuple

import numpy as np
import pandas as pd

from . import published
from .study.experiments import lmc, noise, ntk, pruning, scores, size_sweep, transfer, window

CONFIDENCE = 0.95  # of each one-sided bound
MIN_REPEATS = 3
# Below the paper's full-data accuracy by more than this many points, a study is below paper scale.
PAPER_SCALE_POINTS = 2.0
# The margin of an absence claim ("no better", "no loss", "transfers"), in accuracy points.
MARGIN = 0.5

Estimate = namedtuple("Estimate", "estimate ci_low ci_high n")
# The regime a verdict was measured in: `label` follows the verdict ("reproduced (keep-easy regime)"),
# `reason` joins its reasons.
Scale = namedtuple("Scale", "label reason")
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


def row(claim, source, theirs, verdict, reason="", estimate=NOTHING, **extra):
    """A claims-table row; `extra`: dataset, arch and `ours` (the measured number in words)."""
    return {
        "claim": claim,
        "source": source,
        "dataset": extra.get("dataset", ""),
        "arch": extra.get("arch", ""),
        "estimate": estimate.estimate,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
        "n": estimate.n,
        "ours": extra.get("ours", ""),
        "theirs": theirs,
        "verdict": verdict,
        "reason": reason,
    }


def described(est, unit, describe):
    text = f"{est.estimate:+.2f} {unit} [{est.ci_low:+.2f}, {est.ci_high:+.2f}], n={est.n}"
    if est.n < 2:
        text = f"{est.estimate:+.2f} {unit}, n={est.n}"
    return f"{text}; {describe}" if describe else text


def decided(verdict, reasons, scale):
    """The verdict with its regime (a Scale, or None) said for every outcome, and the reasons joined."""
    if scale is None:
        return verdict, "; ".join(r for r in reasons if r)
    return f"{verdict} ({scale.label})", "; ".join(r for r in (*reasons, scale.reason) if r)


def judged(claim, source, theirs, diffs, decide, *, dataset, arch, scale=None, unit="points", describe=None, why=""):
    """A row for a claim on paired differences: `decide(estimate)` gives (verdict, reason) once
    there are enough repeats."""
    est = bounds(diffs)
    if est.n < MIN_REPEATS:
        verdict, reason = "underpowered", f"{est.n} repeats (a verdict needs {MIN_REPEATS})"
    else:
        verdict, reason = decide(est)
    verdict, reason = decided(verdict, [reason, why], scale)
    return row(
        claim, source, theirs, verdict, reason, est, dataset=dataset, arch=arch, ours=described(est, unit, describe)
    )


def superiority(claim, source, theirs, diffs, *, direction=1, **how):
    """A directional claim: the paired differences `diffs` are positive (direction=1) or negative."""
    return judged(claim, source, theirs, diffs, superior(direction), **how)


def superior(direction=1):
    """The decision of a directional claim on an estimate with its bounds: (verdict, reason)."""

    def decide(est):
        low, high = (est.ci_low, est.ci_high) if direction > 0 else (-est.ci_high, -est.ci_low)
        if low > 0:
            return "reproduced", ""
        if high < 0:
            return "not reproduced", "the interval excludes 0 in the opposite direction"
        return "inconclusive", "the interval holds 0"

    return decide


def equivalence(claim, source, theirs, diffs, margin, **how):
    """An absence claim: the paired differences lie within +-`margin` (two one-sided tests at 5%)."""
    unit = how.get("unit", "points")

    def decide(est):
        if -margin < est.ci_low and est.ci_high < margin:
            return "reproduced", f"equivalent within +-{margin:g} {unit}"
        if est.ci_low > margin or est.ci_high < -margin:
            return "not reproduced", f"different by more than {margin:g} {unit}"
        return "inconclusive", f"underpowered: the interval straddles the margin +-{margin:g} {unit}"

    return judged(claim, source, theirs, diffs, decide, **how)


def noninferiority(claim, source, theirs, diffs, margin, **how):
    """A "no loss" claim: the paired differences lie above -`margin` (one-sided test at 5%)."""
    unit = how.get("unit", "points")

    def decide(est):
        if est.ci_low > -margin:
            return "reproduced", f"no loss beyond {margin:g} {unit}"
        if est.ci_high < -margin:
            return "not reproduced", f"a loss of more than {margin:g} {unit}"
        return "inconclusive", f"the interval holds the margin -{margin:g} {unit}"

    return judged(claim, source, theirs, diffs, decide, **how)


def threshold(claim, source, theirs, est, level, *, dataset, arch, scale=None, describe=None, why=""):
    """A claim that a statistic (a rank correlation, with bounds) reaches `level`."""
    if est.ci_low >= level:
        verdict, reason = "reproduced", f"holds at >= {level:g}"
    elif est.ci_high < level:
        verdict, reason = "not reproduced", f"below {level:g}"
    else:
        verdict, reason = "inconclusive", f"the interval holds {level:g}"
    verdict, reason = decided(verdict, [reason, why], scale)
    ours = f"{est.estimate:.3f} [{est.ci_low:.3f}, {est.ci_high:.3f}], n={est.n}" + (
        f"; {describe}" if describe else ""
    )
    return row(claim, source, theirs, verdict, reason, est, dataset=dataset, arch=arch, ours=ours)


def not_measured(claim, source, theirs, why, *, dataset="", arch="", scale=None):
    """A claim the study has no runs for (`scale` is accepted, and moot)."""
    return row(claim, source, theirs, "not measured", why, dataset=dataset, arch=arch, ours="not run")


def spearman(a, b):
    """Spearman's rho with Fisher-z bounds (standard error 1.03/sqrt(n-3), Fieller et al. 1957)."""
    from scipy import stats

    rho, n = float(np.clip(stats.spearmanr(a, b).statistic, -0.999999, 0.999999)), len(a)  # finite z
    half = stats.norm.ppf(CONFIDENCE) * 1.03 / np.sqrt(max(n - 3, 1))
    return Estimate(float(rho), float(np.tanh(np.arctanh(rho) - half)), float(np.tanh(np.arctanh(rho) + half)), n)


def scale_note(runs, dataset, arch, clean, regimes=None):
    """The regime of this (dataset, arch): the one the size sweep measured (`regimes`, see
    size_sweep.regimes), else a Scale saying it is below the paper's scale, or None when it is at it."""
    if regimes and (dataset, arch) in regimes:
        return regimes[(dataset, arch)]
    full = select(runs, dataset=dataset, arch=arch, method="full", noise=clean)
    theirs, whose = published.full_data_accuracy(dataset, arch)
    if full.empty:
        return Scale("scale unknown", "no full-data run to judge the scale by")
    ours = 100 * full.test_accuracy.mean()
    if theirs is None or ours >= theirs - PAPER_SCALE_POINTS:  # no record: nothing to say it is below
        return None
    return Scale(
        "below paper scale", f"full data {ours:.1f}% on {full.num_examples.max()} examples vs {whose} ~{theirs:g}%"
    )


def closest(values, target):
    values = sorted(set(values))
    return min(values, key=lambda v: abs(v - target))


def table(found, score):
    """Every claim the study measured. `found`: the report's result tables (report.read_results);
    `score`: the early EL2N score of the pruning curve."""
    clean, curve, regimes = found["clean"], found["curve"], found["regimes"]

    def scale_of(table):
        """The regime of the (first) dataset and architecture an experiment's table ran on."""
        return None if table.empty else scale_note(curve, table.iloc[0].dataset, table.iloc[0].arch, clean, regimes)

    rows = curve_claims(curve, found["how_early"], clean, score, regimes)
    rows += window.claims(found["windows"], clean, scale_of(found["windows"]), found["window_settings"])
    rows += transfer.claims(found["transfer"], score, scale_of(found["transfer"]))
    main, main_scale = found["main"], scale_note(curve, *found["main"], clean, regimes)
    rows += scores.claims(found["clean_scores"], main, main_scale)
    rows += noise.ranking_claims(found["noisy_scores"], found["corrupted"], score, main, main_scale)
    rows += [ntk.ntk_rises(found["ntk"], clean, main, main_scale)]
    settings = found["lmc_settings"]
    rows += [lmc.lmc_later(found["lmc"], settings["epsilon"], settings["fit_error"], scale_of(found["lmc"]))]
    rows += size_sweep.claims(found["sweep"], found["sweep_settings"]["score"], *found["sweep_main"])
    return pd.DataFrame(rows)


def curve_claims(curve, how_early, clean, score, regimes=None):
    """The pruning-curve claims, a row each per (dataset, architecture), each judged in its own regime."""
    rows = []
    for (dataset, arch), runs in curve.groupby(["dataset", "arch"], sort=False):
        scale = scale_note(curve, dataset, arch, clean, regimes)
        early = select(how_early, dataset=dataset, arch=arch) if not how_early.empty else how_early
        # The how-early runs add kept fractions the curve may lack (CIFAR-100's 75%); shared runs once.
        every = pd.concat([runs, early]).drop_duplicates("run_id")
        rows += pruning.claims(every, clean, scale, score, dataset, arch)
        rows += noise.pruning_claims(runs, clean, scale, dataset, arch)
        rows += pruning.how_early_claims(early, scale, dataset, arch)
    return rows
