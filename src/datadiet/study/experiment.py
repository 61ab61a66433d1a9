"""What an experiment of the study gives the report: the result files it reads, how it reads them into
tables, its figures and its claims. The experiments are listed once, in `experiments.EXPERIMENTS`, in the
order the report shows them; the report rule, the report step, the page and the claims table loop over
that list, so a new experiment is one module and one line there (docs/design.md).

`results` is the report's dict of tables: each experiment's `read` adds its own to it, after the reads
of the experiments listed before it, and its `claims` and figures read it whole (with `results["study"]`,
the study's config)."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str  # figures/<name>.png, captioned by workflow/report/<name>.rst
    title: str  # the page's heading
    shows: str  # the table of `results` it draws: empty, the experiment did not run
    draw: Callable  # draw(results, path)
    not_run: str = "not run in this study"  # why it is empty: the config that leaves its experiment out
    below: Callable | None = None  # below(results) -> the HTML shown under the figure (its tables)


@dataclass(frozen=True)
class Experiment:
    name: str
    inputs: dict  # {report input: targets(study)}: the result files it reads (a name may be shared)
    read: Callable  # read(study, inputs, results) -> {table name: table}
    figures: tuple = ()
    claims: Callable = lambda results, regime: []  # -> claim rows; regime(dataset, arch): see claims.py
    runs: tuple = ()  # (label, table of `results`): its training runs, for the list of every run


def first_regime(regime, table):
    """The regime of the (first) dataset and architecture an experiment's table ran on (None: not run)."""
    return None if table.empty else regime(table.iloc[0].dataset, table.iloc[0].arch)
