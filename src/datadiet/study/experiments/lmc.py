"""Linear mode connectivity (Fig. 4): two children spawned from each parent run at each spawn epoch,
trained on different data orders, and the error barrier between them on high-, low-score and random
example sets."""

from .. import layout
from ..experiment import Experiment, Figure, first_regime

CHILDREN = (0, 1)
CLAIM = "high-EL2N sets become linearly connected later"
THEIRS = "low-score sets stable early, high-score sets late (Fig. 4)"
BN = {"reestimate": "BN re-estimated", "interpolate": "BN interpolated"}


def targets(study):
    if not study.active("lmc"):
        return []
    dataset = study.lmc["dataset"]
    return [study.path(layout.BARRIER, dataset=dataset, arch=study.arch_of(dataset), noise=study.clean)]


def alphas_label(table):
    """What the barrier column is: the barrier at alpha = 1/2, or the max over the alphas measured."""
    alphas = sorted(float(c.removeprefix("error_alpha")) for c in table.columns if c.startswith("error_alpha"))
    return "alpha = 1/2" if alphas == [0.5] else "max over alpha in {" + ", ".join(f"{a:g}" for a in alphas) + "}"


def lmc_barrier(results, path):
    """Fig. 4: error barrier between two children vs the epoch they were spawned at, on the
    highest-score, lowest-score and random example sets, mean and std band over parents; beside it the
    error of the worse child on each set (the barrier means little where the children do not fit it).
    Dashed: epsilon and fit_error."""
    from ..figures import plt, save, sns

    table, settings = results["lmc"], results["study"].lmc
    epsilon, fit_error = settings["epsilon"], settings["fit_error"]

    data = table.assign(endpoint_error=table[["error_a", "error_b"]].max(axis=1))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    panels = (
        ("barrier", f"error barrier, {alphas_label(table)}\n({BN[table.bn.iloc[0]]})", epsilon),
        ("endpoint_error", "error of the worse child on the set", fit_error),
    )
    for ax, (column, label, level) in zip(axes, panels):
        sets = {"hue": "set", "hue_order": ["high", "low", "random"]}
        sns.lineplot(data=data, x="spawn_epoch", y=column, marker="o", errorbar="sd", ax=ax, **sets)
        if level is not None:
            ax.axhline(level, color="gray", linestyle="--", linewidth=1)
        ax.set(xlabel="spawn epoch t*", ylabel=label)
    parents = table.parent.nunique()
    fig.suptitle(f"mean and std band over {parents} parent run{'s' if parents != 1 else ''}", fontsize=10)
    save(fig, path)


def fitted(barriers, fit_error):
    """Rows where both children fit the set: error at most `fit_error` at each end point."""
    return barriers[["error_a", "error_b"]].max(axis=1) <= fit_error


def stable_epochs(barriers, epsilon, fit_error):
    """Per parent and set, the first spawn epoch whose barrier is below `epsilon`, among the spawn epochs
    where both children fit the set. A set never stable is censored one spawn step past the last spawn
    epoch; a (parent, set) fitted at no spawn epoch has no row. Columns parent, set, stable, censored."""
    import pandas as pd

    spawns = sorted(barriers.spawn_epoch.unique())
    past = spawns[-1] + (spawns[-1] - spawns[-2] if len(spawns) > 1 else 1)
    rows = []
    for (parent, name), group in barriers[fitted(barriers, fit_error)].groupby(["parent", "set"]):
        stable = group.spawn_epoch[group.barrier < epsilon]
        first = stable.min() if len(stable) else past
        rows.append({"parent": parent, "set": name, "stable": first, "censored": stable.empty})
    return pd.DataFrame(rows, columns=["parent", "set", "stable", "censored"])


def fit_note(barriers, fit_error):
    """Why some (parent, spawn epoch) pairs do not count: how much of the high and low sets the children fit."""
    notes = []
    for name in ("high", "low"):
        rows = barriers[barriers.set == name]
        unfit = (~fitted(rows, fit_error)).sum()
        if unfit:
            share = 100 * (1 - rows[["error_a", "error_b"]].to_numpy().mean())
            notes.append(
                f"children fit only {share:.0f}% of the {name} set (a child's error above {fit_error:g} "
                f"at {unfit} of {len(rows)} parent-spawn pairs)"
            )
    return "; ".join(notes)


def lmc_later(barriers, epsilon, fit_error, scale=None):
    """The spawn epoch from which the barrier is below `epsilon` comes later for the high-score set than
    for the low-score set: per parent, stable epoch of high - low (spawn epochs where the children do
    not fit a set, error above `fit_error`, do not count)."""
    from ...verdicts import not_measured, superiority

    if barriers.empty:
        return not_measured(CLAIM, "paper", THEIRS, "experiments.lmc is not run")
    where = {"dataset": barriers.dataset.iloc[0], "arch": barriers.arch.iloc[0]}
    stable = stable_epochs(barriers, epsilon, fit_error)
    by_parent = stable.pivot(index="parent", columns="set", values="stable").reindex(columns=["high", "low"])
    usable = by_parent.dropna()
    note = fit_note(barriers, fit_error)
    if usable.empty:
        return not_measured(CLAIM, "paper", THEIRS, f"no parent whose children fit both sets: {note}", **where)
    censored = stable.set_index(["parent", "set"]).censored
    marks = {(p, name): "*" if censored[p, name] else "" for p in usable.index for name in ("high", "low")}
    epochs = {
        name: ", ".join(f"{usable.at[p, name]:g}{marks[p, name]}" for p in usable.index) for name in ("high", "low")
    }
    describe = (
        f"stable (barrier < {epsilon:g}, {alphas_label(barriers)}, {BN[barriers.bn.iloc[0]]}) from spawn epoch: "
        f"high {epochs['high']}; low {epochs['low']} (per parent"
        + ("; * never stable: censored one spawn step past the last" if any(marks.values()) else "")
        + ")"
    )
    parents = barriers.parent.nunique()
    why = f"{len(usable)} of {parents} parents usable: {note}" if len(usable) < parents else ""
    diffs = usable.high - usable.low
    scope = "this subset"  # the high and low sets of one score ranking, in every parent
    return superiority(CLAIM, "paper", THEIRS, diffs, unit="epochs", describe=describe, why=why, scale=scale,
                       scope=scope, **where)  # fmt: skip


def read(study, inputs, results):
    from ..collect import read_tables

    return {"lmc": read_tables(inputs["lmc"])}


def judge(results, regime):
    barriers, settings = results["lmc"], results["study"].lmc
    return [lmc_later(barriers, settings["epsilon"], settings["fit_error"], first_regime(regime, barriers))]


def barrier_table(results):
    return results["lmc"].round(4).to_html(index=False)


FIGURE = Figure("lmc_barrier", "Linear mode connectivity", "lmc", lmc_barrier, "experiments.lmc.activate is false",
                below=barrier_table)  # fmt: skip
EXPERIMENT = Experiment("lmc", {"lmc": targets}, read, (FIGURE,), judge)
