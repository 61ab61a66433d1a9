"""The claims table: each qualitative claim of the paper and of the reproduction, our estimate with its
interval beside their number, and a verdict computed from the results, one row per (dataset,
architecture). The claims themselves live with their experiment (study/experiments/*.py), judged by
`verdicts` on `stats`; this module gathers them and says the regime each was measured in.

Where the size sweep ran at the study's own size, the regime is the one it measured there (keep-hard:
keeping the hardest beats random; keep-easy: keeping the easiest does; random-best: random beats both);
elsewhere "below paper scale" when full data falls short of the paper's accuracy. Nothing here assumes
a regime.
"""

import pandas as pd

from ..stats import select
from ..verdicts import Scale
from . import published
from .experiments import lmc, noise, ntk, pruning, scores, size_sweep, transfer, window

# Below the paper's full-data accuracy by more than this many points, a study is below paper scale.
PAPER_SCALE_POINTS = 2.0


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
