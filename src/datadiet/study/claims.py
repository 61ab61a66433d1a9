"""The claims table: each qualitative claim of the paper and of the reproduction, our estimate with its
interval beside their number, and a verdict computed from the results, one row per (dataset,
architecture). The claims themselves live with their experiment (study/experiments/*.py, each its
`EXPERIMENT.claims`), judged by `verdicts` on `stats`; this module gathers them and says the regime each
was measured in.

Where the size sweep ran at the study's own size, the regime is the one it measured there (keep-hard:
keeping the hardest beats random; keep-easy: keeping the easiest does; random-best: random beats both);
elsewhere "below paper scale" when full data falls short of the paper's accuracy. Nothing here assumes
a regime.
"""

from .. import verdicts
from ..stats import select
from ..verdicts import Scale
from . import experiments, published

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


def table(results):
    """Every claim the study measured, experiment by experiment (`results`: report.read_results), each
    labelled with the regime of the (dataset, architecture) it was measured on; the decisive rows
    adjusted together as one family (verdicts.family: Holm)."""
    curve, clean, regimes = results["curve"], results["clean"], results["regimes"]

    def regime(dataset, arch):
        return scale_note(curve, dataset, arch, clean, regimes)

    rows = [row for experiment in experiments.EXPERIMENTS for row in experiment.claims(results, regime)]
    return verdicts.family(rows, f"the {results['study'].name} study's claims table")
