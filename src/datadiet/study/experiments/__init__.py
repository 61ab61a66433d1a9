"""One module per experiment of the paper: its result files (targets), its figures and claims, and its
`EXPERIMENT` (study/experiment.py), listed here once in the order the report shows them.

Snakemake imports these modules on every run for their targets, so a figure or claim imports the
plotting toolkit, scipy and torch inside the function, where it runs."""

from . import lmc, noise, ntk, pruning, scores, size_sweep, transfer, window

EXPERIMENTS = tuple(module.EXPERIMENT for module in (pruning, window, transfer, scores, noise, ntk, lmc, size_sweep))
FIGURES = tuple(figure for experiment in EXPERIMENTS for figure in experiment.figures)


def inputs():
    """{report input: targets(study)} of every experiment (the score files serve two)."""
    named = {}
    for experiment in EXPERIMENTS:
        for name, targets in experiment.inputs.items():
            assert named.setdefault(name, targets) is targets, f"two experiments read {name} from other files"
    return named


def report_inputs(study):
    """{report input: its result files} for `study`."""
    return {name: targets(study) for name, targets in inputs().items()}
