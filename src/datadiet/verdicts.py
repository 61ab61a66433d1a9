"""A claim judged: one row of the claims table, our estimate with its interval beside their number and
a verdict decided by a one-sided test (`stats`) of paired differences. Every claim is one side of a
boundary: superiority (above or below 0), "no loss" (above -margin), "does not beat" (below +margin),
a correlation reaching a level. Verdicts:
- "reproduced": the claim's side is decided at 5%, within its family (Holm's adjustment, `family`);
- "not reproduced": the other side is, likewise;
- "inconclusive": neither; the row gives the effect it could have detected with 80% power;
- "underpowered": fewer than `stats.MIN_REPEATS` repeats; nothing is called;
- "descriptive": a number whose samples are not independent, so no test;
- "not measured": the study did not run it.
A row on its own is a family of one; a table is adjusted as one family by `family`. Every verdict
says the regime it was measured in (a `Scale`) and the scope of its repeats: "method" where each
repeat's selection came from its own scoring runs (the interval covers the score's variation), "this
subset" where every repeat retrained one fixed subset. This module knows nothing of the study: the
study's claims table and `gpu_check` both build their rows here.
"""

from collections import namedtuple

import numpy as np

from . import stats
from .stats import ALPHA, NOTHING

# The margin of an absence claim ("no loss", "does not beat"), in accuracy points.
MARGIN = 0.5

# The regime a verdict was measured in: `label` follows the verdict ("reproduced (keep-easy regime)"),
# `reason` joins its reasons.
Scale = namedtuple("Scale", "label reason")

# A one-sided claim: the true value lies beyond `boundary` in `direction` (+1 above, -1 below); `holds`
# and `fails` say each side in words, `unit` that of the estimate.
Side = namedtuple("Side", "boundary direction holds fails unit")

# The columns of a claims table (claims.csv), in order.
COLUMNS = ["claim", "source", "dataset", "arch", "scope", "estimate", "ci_low", "ci_high", "n", "ours", "theirs",
           "verdict", "reason", "p", "p_adjusted", "p_against", "p_against_adjusted", "family",
           "detectable"]  # fmt: skip


def positive(direction=1, unit="points"):
    """Superiority: above 0 (direction 1) or below it (-1)."""
    above, below = "above 0", "below 0"
    return Side(0.0, direction, *((above, below) if direction > 0 else (below, above)), unit)


def no_loss(margin, unit="points"):
    return Side(-margin, 1, f"no loss beyond {margin:g} {unit}", f"a loss of more than {margin:g} {unit}", unit)


def no_gain(margin, unit="points"):
    return Side(margin, -1, f"no gain beyond {margin:g} {unit}", f"a gain of more than {margin:g} {unit}", unit)


def at_least(level):
    return Side(level, 1, f"at least {level:g}", f"below {level:g}", "")


def row(claim, source, theirs, verdict, reason="", estimate=NOTHING, **extra):
    """A claims-table row; `extra`: dataset, arch, scope and `ours` (the measured number in words)."""
    return {
        "claim": claim,
        "source": source,
        "dataset": extra.get("dataset", ""),
        "arch": extra.get("arch", ""),
        "scope": extra.get("scope", ""),
        "estimate": estimate.estimate,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
        "n": estimate.n,
        "ours": extra.get("ours", ""),
        "theirs": theirs,
        "verdict": verdict,
        "reason": reason,
        "p": np.nan,
        "p_against": np.nan,
        "detectable": np.nan,
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


def tested(claim, source, theirs, est, test, side, *, ours, dataset, arch, scope, scale=None, why=()):
    """A row decided by `test` (a stats.Test of `side`, None below 2 repeats), as a family of one."""
    judged_row = row(claim, source, theirs, "", "", est, dataset=dataset, arch=arch, scope=scope, ours=ours)
    if test is not None:
        judged_row.update(p=test.p, p_against=test.p_against)
    judged_row.update(_test=test, _side=side, _scale=scale, _why=[w for w in why if w])
    return judge(judged_row, judged_row["p"], judged_row["p_against"], 1)


def judge(judged_row, p, p_against, family_size):
    """The row's verdict and reason from its (adjusted) p-values in a family of `family_size`, with the
    effect it could detect at the family's first Holm step (ALPHA / family_size)."""
    test, side, n = judged_row["_test"], judged_row["_side"], judged_row["n"]
    level = ALPHA / max(family_size, 1)
    detectable = stats.detectable(test, level) if test is not None else np.nan
    if n < stats.MIN_REPEATS:
        verdict, said = "underpowered", f"{n} repeats (a verdict needs {stats.MIN_REPEATS})"
    elif p <= ALPHA:
        verdict, said = "reproduced", side.holds
    elif p_against <= ALPHA:
        verdict, said = "not reproduced", side.fails
    else:
        verdict, said = "inconclusive", f"undecided between {side.holds} and {side.fails}"
    if n >= stats.MIN_REPEATS:
        against = verdict == "not reproduced"  # the side decided, or else the claim's
        raw, adjusted = (judged_row["p_against"], p_against) if against else (judged_row["p"], p)
        holm = f", Holm-adjusted {adjusted:.3g} in a family of {family_size}" if family_size > 1 else ""
        said += f" (p = {raw:.3g}{holm})"
    if verdict in ("inconclusive", "underpowered") and np.isfinite(detectable):
        unit = f" {side.unit}" if side.unit else ""
        said += (
            f"; detectable with {stats.POWER:.0%} power at level {level:.2g}: a true {detectable:+.3g}{unit} or beyond"
        )
    elif verdict in ("inconclusive", "underpowered") and test is not None and test.se == 0:
        said += "; the differences have no spread: only the exact sign-flip test decides"
    verdict, reason = decided(verdict, [said, *judged_row["_why"]], judged_row["_scale"])
    return judged_row | {"verdict": verdict, "reason": reason, "detectable": detectable}


def family(rows, name):
    """The claims table of `rows` as one family: the decisive rows' p-values (each side's) adjusted
    together by Holm, so that P(any false "reproduced") <= ALPHA whatever the rows share (the random
    runs, the full-data runs); their verdicts re-decided on the adjusted values."""
    import pandas as pd

    decisive = np.array([r["n"] >= stats.MIN_REPEATS and np.isfinite(r["p"]) for r in rows], dtype=bool)
    size = int(decisive.sum())
    adjusted = stats.holm([r["p"] if d else np.nan for r, d in zip(rows, decisive)])
    adjusted_against = stats.holm([r["p_against"] if d else np.nan for r, d in zip(rows, decisive)])
    said = f"{name}: {size} decisive rows, Holm (family-wise rate {ALPHA:.0%})"
    table = []
    for r, p, p_against, in_family in zip(rows, adjusted, adjusted_against, decisive):
        if "_side" in r:
            r = judge(r, p, p_against, max(size, 1))
        table.append(r | {"p_adjusted": p, "p_against_adjusted": p_against, "family": said if in_family else ""})
    return pd.DataFrame(table, columns=COLUMNS)


def judged(claim, source, theirs, diffs, side, *, dataset, arch, scale=None, describe=None, why="", scope=None):
    """A row for a claim on paired differences (`stats.between`'s, whose attrs name the repeats left
    unmatched and the scope): the one-sided test of `side`."""
    est, attrs = stats.bounds(diffs), getattr(diffs, "attrs", {})
    unmatched = attrs.get("unmatched")
    left_out = f"repeats {', '.join(map(str, unmatched))} have no twin and are left out" if unmatched else ""
    test = stats.mean_beyond(diffs, side.boundary, side.direction) if est.n >= 2 else None
    return tested(
        claim, source, theirs, est, test, side, ours=described(est, side.unit, describe), dataset=dataset, arch=arch,
        scope=scope or attrs.get("scope", "method"), scale=scale, why=(why, left_out),
    )  # fmt: skip


def superiority(claim, source, theirs, diffs, *, direction=1, unit="points", **context):
    """A directional claim: the paired differences `diffs` are positive (direction=1) or negative."""
    return judged(claim, source, theirs, diffs, positive(direction, unit), **context)


def noninferiority(claim, source, theirs, diffs, margin, unit="points", **context):
    """A "no loss" claim: the paired differences lie above -`margin`."""
    return judged(claim, source, theirs, diffs, no_loss(margin, unit), **context)


def nonsuperiority(claim, source, theirs, diffs, margin, unit="points", **context):
    """A "does not beat" claim: the paired differences lie below +`margin` (worse by any amount holds it)."""
    return judged(claim, source, theirs, diffs, no_gain(margin, unit), **context)


def threshold(claim, source, theirs, est, level, *, dataset, arch, scale=None, describe=None, why="", test=None,
              scope="these scoring runs"):  # fmt: skip
    """A claim that a statistic (a rank correlation, with bounds) reaches `level`, by `test` (a
    stats.Test; by default Fisher's z of a rank correlation)."""
    ours = f"{est.estimate:.3f} [{est.ci_low:.3f}, {est.ci_high:.3f}], n={est.n}" + (
        f"; {describe}" if describe else ""
    )
    test = test or stats.correlation_reaches(est, level)
    return tested(
        claim, source, theirs, est, test, at_least(level), ours=ours, dataset=dataset, arch=arch, scope=scope,
        scale=scale, why=(why,),
    )  # fmt: skip


def descriptive(claim, source, theirs, ours, why, *, dataset="", arch="", scope="", estimate=NOTHING):
    """A number with no test: its samples are not independent (`why`)."""
    return row(claim, source, theirs, "descriptive", why, estimate, dataset=dataset, arch=arch, scope=scope, ours=ours)


def not_measured(claim, source, theirs, why, *, dataset="", arch="", scale=None):
    """A claim the study has no runs for (`scale` is accepted, and moot)."""
    return row(claim, source, theirs, "not measured", why, dataset=dataset, arch=arch, ours="not run")
