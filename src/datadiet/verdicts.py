"""A claim judged: one row of the claims table, our estimate with its interval beside their number and
a verdict decided by `stats` from paired differences. Verdicts:
- "reproduced": the bound on the claimed side excludes 0 (an absence claim: the interval lies inside
  the stated margin);
- "not reproduced": the other bound excludes 0 the other way (absence: the interval lies outside the
  margin);
- "inconclusive": the interval holds 0 (absence: it straddles the margin);
- "underpowered": fewer than `stats.MIN_REPEATS` repeats; nothing is called;
- "not measured": the study did not run it.
Every verdict says the regime it was measured in (a `Scale`), whatever the outcome. This module knows
nothing of the study: the study's claims table and `gpu_check` both build their rows here.
"""

from collections import namedtuple

from . import stats
from .stats import NOTHING

# The margin of an absence claim ("no better", "no loss", "transfers"), in accuracy points.
MARGIN = 0.5

# The regime a verdict was measured in: `label` follows the verdict ("reproduced (keep-easy regime)"),
# `reason` joins its reasons.
Scale = namedtuple("Scale", "label reason")


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
    est = stats.bounds(diffs)
    if est.n < stats.MIN_REPEATS:
        verdict, reason = "underpowered", f"{est.n} repeats (a verdict needs {stats.MIN_REPEATS})"
    else:
        verdict, reason = decide(est)
    verdict, reason = decided(verdict, [reason, why], scale)
    return row(
        claim, source, theirs, verdict, reason, est, dataset=dataset, arch=arch, ours=described(est, unit, describe)
    )


def superiority(claim, source, theirs, diffs, *, direction=1, **context):
    """A directional claim: the paired differences `diffs` are positive (direction=1) or negative."""
    return judged(claim, source, theirs, diffs, stats.superior(direction), **context)


def equivalence(claim, source, theirs, diffs, margin, **context):
    """An absence claim: the paired differences lie within +-`margin` (two one-sided tests at 5%)."""
    return judged(claim, source, theirs, diffs, stats.equivalent(margin, context.get("unit", "points")), **context)


def noninferiority(claim, source, theirs, diffs, margin, **context):
    """A "no loss" claim: the paired differences lie above -`margin` (one-sided test at 5%)."""
    return judged(claim, source, theirs, diffs, stats.noninferior(margin, context.get("unit", "points")), **context)


def threshold(claim, source, theirs, est, level, *, dataset, arch, scale=None, describe=None, why=""):
    """A claim that a statistic (a rank correlation, with bounds) reaches `level`."""
    verdict, reason = stats.reaches(level)(est)
    verdict, reason = decided(verdict, [reason, why], scale)
    ours = f"{est.estimate:.3f} [{est.ci_low:.3f}, {est.ci_high:.3f}], n={est.n}" + (
        f"; {describe}" if describe else ""
    )
    return row(claim, source, theirs, verdict, reason, est, dataset=dataset, arch=arch, ours=ours)


def not_measured(claim, source, theirs, why, *, dataset="", arch="", scale=None):
    """A claim the study has no runs for (`scale` is accepted, and moot)."""
    return row(claim, source, theirs, "not measured", why, dataset=dataset, arch=arch, ours="not run")
