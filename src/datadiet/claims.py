"""The claims table: each qualitative claim of the paper and of the reproduction, our measured
number beside theirs, and a verdict computed from the results.

Verdicts: "reproduced" when our number shows the claimed effect beyond the spread of repeats;
"not reproduced" when it shows the opposite at a scale comparable to the paper's; "inconclusive"
when the difference is within the spread, or when the opposite shows at a small scale (scarce
data, Sorscher et al. 2022), with the reason. The claims themselves live with their experiment
(study/experiments/*.py): each takes result tables and returns one row; this module holds the verdict
toolkit they share and `table`, which gathers them.
"""

import numpy as np
import pandas as pd

from .study import names
from .study.experiments import lmc, noise, ntk, pruning, scores, transfer, window

# A study is "at the paper's scale" when its full-data accuracy is close to the paper's (95% on
# CIFAR-10): below this, pruning behaves as in the scarce-data regime.
PAPER_SCALE_ACCURACY = 0.90


def row(
    claim,
    source,
    ours,
    theirs,
    holds,
    spread_ok=True,
    small_scale=None,
    why="",
    unsure="difference within the spread of repeats",
):
    """A claims-table row. `holds`: does our number show the effect; `spread_ok`: is the effect
    larger than the spread of repeats (`unsure` says why not); `small_scale`: a reason string
    when the study is small."""
    if holds is None:
        verdict, reason = "inconclusive", why or "not measured in this study"
    elif holds and spread_ok:
        verdict, reason = "reproduced", why
    elif not spread_ok:
        verdict, reason = "inconclusive", f"{unsure}; {why}".rstrip("; ")
    elif small_scale:
        verdict, reason = "inconclusive at this scale", f"{small_scale}; {why}".rstrip("; ")
    else:
        verdict, reason = "not reproduced", why
    return {"claim": claim, "source": source, "ours": ours, "theirs": theirs, "verdict": verdict, "reason": reason}


def scale_note(runs, clean):
    """Why this study is small, or None at the paper's scale."""
    full = runs[(runs.method == "full") & (runs.noise == clean)]
    accuracy, size = full.test_accuracy.mean(), full.num_examples.max()
    if accuracy >= PAPER_SCALE_ACCURACY:
        return None
    return (
        f"full-data accuracy {100 * accuracy:.1f}% on {size} examples (paper: ~95% on 50,000): "
        "the scarce-data regime, where keeping hard examples can lose to random"
    )


def measured(diff, spread):
    return f"{diff:+.2f} points (spread {spread:.2f})"


def accuracy_stats(runs, **where):
    """Mean and std (over repeats) of the final accuracy, in points, of the runs matching `where`."""
    mask = np.ones(len(runs), dtype=bool)
    for key, value in where.items():
        mask &= (runs[key] == value).to_numpy()
    values = 100 * runs[mask].test_accuracy
    return values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0, len(values)


def difference(runs, a, b, **where):
    """Accuracy of method a minus method b (points) and the spread it must exceed (std of the difference)."""
    mean_a, std_a, n_a = accuracy_stats(runs, method=a, **where)
    mean_b, std_b, n_b = accuracy_stats(runs, method=b, **where)
    if not (n_a and n_b):
        return None, None
    return mean_a - mean_b, float(np.hypot(std_a, std_b))


def closest(values, target):
    values = sorted(set(values))
    return min(values, key=lambda v: abs(v - target))


def table(curve, windows, transfer_runs, clean_scores, noisy_scores, corrupted, velocities, barriers, clean, score):
    """Every claim the study measured. `score`: the early EL2N score of the pruning curve;
    `clean_scores`: clean mean scores, a column each; `noisy_scores`: the same per noise level;
    `corrupted`: {noise: bool array of corrupted labels}; `velocities`, `barriers`: the NTK and LMC tables."""
    small = scale_note(curve, clean)
    noisy = sorted(n for n in curve.noise.unique() if n != clean)
    rows = [
        pruning.el2n_beats_random(curve, clean, small, score),
        pruning.grand_init_vs_input_norm(curve, clean, small),
    ]
    rows += [noise.grand_init_under_noise(curve, n, small) for n in noisy[:1]]
    floor = pruning.run_to_run_spread(curve, clean)
    rows += [window.window_optimum(windows, clean, small, floor)]
    rows += [window.window_noise(windows, clean, n, small, floor) for n in sorted(set(windows.noise) - {clean})[:1]]
    rows += [transfer.scores_transfer(transfer_runs, score, small)]
    epochs = {
        kind: {s.epoch for s in map(names.Score.parse, clean_scores) if s.kind == kind} for kind in names.AT_EPOCH
    }
    common = sorted(epochs["grand"] & epochs["el2n"])
    rows += [scores.rank_alike(clean_scores, max(common), small)] if common else []
    rows += [scores.grand_init_tracks_input_norm(clean_scores, small)] if "grand_e0" in clean_scores else []
    rows += [
        noise.noisy_ranked_hardest(noisy_scores[n], corrupted[n], score, n)
        for n in noisy[:1]
        if score in noisy_scores.get(n, {})
    ]
    rows += [ntk.ntk_rises(velocities, clean), lmc.lmc_later(barriers)]
    if (curve.method == f"ccs-{score}").any():
        rows += [pruning.ccs_at_high_pruning(curve, clean, small, score)]
    return pd.DataFrame(rows)
