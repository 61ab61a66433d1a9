"""Claims verdicts, computed from small hand-made result tables."""

import pandas as pd

from datadiet import claims
from datadiet.study.experiments import lmc, ntk, pruning, window


def curve(accuracy_by_method, full=0.95, size=50_000):
    """Two repeats per method at 50% kept (accuracies a±0.001) plus full-data runs."""
    rows = [
        {"method": "full", "keep": 1.0, "noise": 0.0, "test_accuracy": full + d, "num_examples": size}
        for d in (-0.001, 0.001)
    ]
    for method, accuracy in accuracy_by_method.items():
        rows += [
            {"method": method, "keep": 0.5, "noise": 0.0, "test_accuracy": accuracy + d, "num_examples": size}
            for d in (-0.001, 0.001)
        ]
    return pd.DataFrame(rows)


def test_a_clear_win_at_paper_scale_is_reproduced_and_a_clear_loss_is_not():
    win = curve({"el2n_e20": 0.95, "random": 0.93})
    assert pruning.el2n_beats_random(win, 0.0, claims.scale_note(win, 0.0), "el2n_e20")["verdict"] == "reproduced"
    loss = curve({"el2n_e20": 0.91, "random": 0.93})
    assert pruning.el2n_beats_random(loss, 0.0, claims.scale_note(loss, 0.0), "el2n_e20")["verdict"] == "not reproduced"


def test_a_loss_at_small_scale_is_inconclusive_with_the_reason():
    small = curve({"el2n_e2": 0.30, "random": 0.36}, full=0.38, size=1000)
    note = claims.scale_note(small, 0.0)
    verdict = pruning.el2n_beats_random(small, 0.0, note, "el2n_e2")
    assert verdict["verdict"] == "inconclusive at this scale"
    assert "38.0%" in verdict["reason"] and "1000 examples" in verdict["reason"]


def test_a_difference_within_the_spread_of_repeats_is_inconclusive():
    rows = curve({"el2n_e20": 0.95, "random": 0.949})
    noisy = rows.assign(test_accuracy=rows.test_accuracy + [0, 0, -0.02, 0.02, -0.02, 0.02])
    verdict = pruning.el2n_beats_random(noisy, 0.0, None, "el2n_e20")
    assert verdict["verdict"] == "inconclusive" and "spread" in verdict["reason"]


def test_grand_at_init_claim_is_an_absence():
    even = curve({"grand_e0": 0.93, "input_norm": 0.93})
    assert pruning.grand_init_vs_input_norm(even, 0.0, None)["verdict"] == "reproduced"
    better = curve({"grand_e0": 0.95, "input_norm": 0.92})
    assert pruning.grand_init_vs_input_norm(better, 0.0, None)["verdict"] == "not reproduced"


def test_ntk_and_lmc_verdicts_follow_the_measured_trend():
    rising = pd.DataFrame({"noise": 0.0, "first_rank": range(0, 1000, 100), "velocity": [i / 10 for i in range(10)]})
    assert ntk.ntk_rises(rising, 0.0)["verdict"] == "reproduced"
    falling = rising.assign(velocity=rising.velocity[::-1].to_numpy())
    assert ntk.ntk_rises(falling, 0.0)["verdict"] == "not reproduced"
    barriers = pd.DataFrame(
        [
            {"spawn_epoch": t, "set": s, "barrier": b}
            for t in (0, 1, 2, 4)
            for s, b in (("high", 0.3 / (t + 1)), ("low", 0.1 / (t + 1)), ("random", 0.2 / (t + 1)))
        ]
    )
    assert lmc.lmc_later(barriers)["verdict"] == "reproduced"
    swapped = barriers.assign(set=barriers.set.map({"high": "low", "low": "high", "random": "random"}))
    assert lmc.lmc_later(swapped)["verdict"] == "not reproduced"


def test_window_optimum_uses_the_run_to_run_spread_for_single_runs():
    windows = pd.DataFrame(
        {
            "noise": 0.0,
            "keep": 0.4,
            "start": [0.0, 0.5, 1.0],
            "test_accuracy": [0.80, 0.90, 0.85],
            "excluded_hardest": [600, 300, 0],
        }
    )
    full = curve({})
    decided = window.window_optimum(windows, 0.0, None, pruning.run_to_run_spread(full, 0.0))
    assert decided["verdict"] == "reproduced" and "leaves out the 300 hardest" in decided["ours"]
    undecided = window.window_optimum(windows, 0.0, None, floor=10.0)
    assert undecided["verdict"] == "inconclusive"
