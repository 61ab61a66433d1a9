"""The pruning curve (Fig. 1 bottom, and under label noise) and how early scores work (Fig. 1 top):
retraining on the subsets each method keeps, for the same number of steps as full data."""

from .. import layout, names
from ..experiment import Experiment, Figure

HOW_EARLY_SCORES = ("grand", "el2n")  # the scores how early takes at each of its epochs (Fig. 1 top)


def retrain_result(study, dataset, arch, noise, method, keep, rep):
    where = {"dataset": dataset, "arch": arch, "noise": noise, "method": method, "keep": keep, "rep": rep}
    return study.path(layout.RETRAIN + "/result.json", **where)


def full_data(study, dataset, arch, noise):
    return [retrain_result(study, dataset, arch, noise, "full", 1.0, r) for r in study.repeats]


def curve_targets(study):
    """Every dataset at every noise level: full data once, every method at every pruned fraction (under
    noise, noise.methods)."""
    paths = []
    for dataset in study.datasets:
        arch = study.arch_of(dataset)
        for noise in study.noise:
            methods = study.methods if noise == study.clean else study.noisy_methods
            paths += full_data(study, dataset, arch, noise)
            paths += [
                retrain_result(study, dataset, arch, noise, m, k, r)
                for m in methods
                for k in study.pruned
                for r in study.repeats
            ]
    return paths


def how_early_methods(study):
    epochs = study.how_early["epochs"]
    return [f"{kind}_e{t}" for kind in HOW_EARLY_SCORES for t in epochs] + ["forgetting", "random"]


def how_early_targets(study):
    """One kept fraction per dataset, GraNd@t and EL2N@t for every early t, with forgetting and random
    as reference lines (clean labels)."""
    if not study.active("how_early"):
        return []
    return [
        retrain_result(study, dataset, study.arch_of(dataset), study.clean, m, spec["how_early_keep"], r)
        for dataset, spec in study.datasets.items()
        for m in how_early_methods(study)
        for r in study.repeats
    ]


def pruning_curve(results, path):
    """Final test accuracy vs fraction pruned, a line per method with a min-max band over repeats,
    the full-data accuracy as a dashed line; a panel per dataset and label-noise level."""
    from ..figures import PANELS_OF_LINES, full_data_per_method, save, sns

    runs = results["curve"]

    curves = full_data_per_method(runs).assign(
        pruned=lambda d: 1 - d.keep,
        accuracy=lambda d: 100 * d.test_accuracy,
        selection=lambda d: d.method.map(names.label),
        panel=lambda d: d.dataset + ", noise " + d.noise.astype(str),
    )
    grid = sns.relplot(data=curves, x="pruned", y="accuracy", hue="selection", col="panel", **PANELS_OF_LINES)
    full = runs[runs.method == "full"].assign(panel=lambda d: d.dataset + ", noise " + d.noise.astype(str))
    full = full.groupby("panel").test_accuracy.mean()
    for panel, ax in grid.axes_dict.items():
        ax.axhline(100 * full[panel], color="black", linestyle="--", label="full data")
        ax.set_xlabel("fraction of training set pruned")
        ax.set_ylabel("final test accuracy (%)")
    save(grid.figure, path)


def how_early(results, path):
    """Fig. 1 top: final accuracy at one kept fraction vs the epoch the score was computed at;
    forgetting (end of training) and random as horizontal lines."""
    from ..figures import plt, save, sns

    runs = results["how_early"]

    timed = runs[runs.method.str.match(r"^(grand|el2n)_e\d+$")].assign(
        epoch=lambda d: d.method.str.split("_e").str[1].astype(int),
        score=lambda d: d.method.str.split("_e").str[0].map({"grand": "GraNd", "el2n": "EL2N"}),
        accuracy=lambda d: 100 * d.test_accuracy,
    )
    datasets = list(runs.dataset.unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        sns.lineplot(
            data=timed[timed.dataset == dataset],
            x="epoch",
            y="accuracy",
            hue="score",
            marker="o",
            errorbar=("pi", 100),
            ax=ax,
        )
        for method, color in (("forgetting", "tab:green"), ("random", "gray")):
            level = runs[(runs.dataset == dataset) & (runs.method == method)].test_accuracy.mean()
            ax.axhline(100 * level, color=color, linestyle="--", label=method)
        keep = runs[runs.dataset == dataset].keep.iloc[0]
        ax.set(
            title=f"{dataset}: {keep:.0%} kept",
            xlabel="epoch t the score was computed at",
            ylabel="final test accuracy (%)",
        )
        ax.legend()
    save(fig, path)


def dataset_claims(runs, clean, scale, score, dataset, arch):
    """The pruning curve's claims on one (dataset, architecture): `runs` holds its runs only."""
    from .. import published

    where = {"dataset": dataset, "arch": arch, "scale": scale}
    clean_runs = runs[runs.noise == clean]
    rows = [
        el2n_beats_random(clean_runs, score, where),
        grand_init_vs_input_norm(clean_runs, where),
        ccs_beats_random(clean_runs, score, where),
    ]
    keep = published.PRUNABLE_KEEP.get(dataset)
    if keep is not None:
        rows.append(prunable(clean_runs, score, keep, where))
    return rows


def el2n_beats_random(runs, score, where):
    from ...stats import closest, paired
    from ...verdicts import not_measured, superiority
    from .. import published

    claim, theirs = (
        f"{names.label(score)} beats random at moderate pruning",
        "+1.68 points at 50% kept (reproduction, EL2N@20)",
    )
    if not (runs.method == score).any():
        return not_measured(claim, "paper, reproduction", theirs, f"{score} is not in pruning.methods", **where)
    keep = closest(runs[runs.method == score].keep, 0.5)
    if where["arch"] == "airbench":  # the reproduction's fast proxy: its own table
        gain = published.gain_over_random("airbench", score, keep)
        theirs = "not on record" if gain is None else f"{gain:+.2f} points at {keep:.0%} kept (reproduction's proxy)"
    diffs = paired(runs, score, "random", keep=keep)
    return superiority(f"{claim} ({keep:.0%} kept)", "paper, reproduction", theirs, diffs, **where)


def grand_init_vs_input_norm(runs, where):
    """An absence: GraNd@0 selects no better subsets than input norm (better by less than the margin,
    worse by any amount: one-sided)."""
    from ...stats import closest, paired
    from ...verdicts import MARGIN, nonsuperiority, not_measured

    claim, theirs = "GraNd at init does not beat input norm", "-0.22 points at 50% kept"
    if not {"grand_e0", "input_norm"} <= set(runs.method):
        return not_measured(
            claim, "reproduction", theirs, "grand_e0 and input_norm must both be in pruning.methods", **where
        )
    keep = closest(runs[runs.method == "grand_e0"].keep, 0.5)
    diffs = paired(runs, "grand_e0", "input_norm", keep=keep)
    return nonsuperiority(f"{claim} ({keep:.0%} kept)", "reproduction", theirs, diffs, MARGIN, **where)


def ccs_beats_random(runs, score, where):
    """CCS against random, as Zheng et al. report it, at the highest pruning rate."""
    from ...stats import paired
    from ...verdicts import not_measured, superiority

    method, theirs = f"ccs-{score}", ">= 7 points above random at 90% pruned"
    claim = f"CCS({names.label(score)}) beats random at high pruning"
    if not (runs.method == method).any():
        return not_measured(claim, "beyond (Zheng et al. 2023)", theirs, f"{method} is not in pruning.methods", **where)
    keep = runs[runs.method == method].keep.min()
    diffs = paired(runs, method, "random", keep=keep)
    return superiority(f"{claim} ({keep:.0%} kept)", "beyond (Zheng et al. 2023)", theirs, diffs, **where)


def prunable(runs, score, keep, where):
    """The headline: the score keeps `keep` of the data with no loss against full data."""
    from ...stats import between
    from ...verdicts import MARGIN, noninferiority, not_measured

    claim = f"{1 - keep:.0%} of the data can go with no loss ({names.label(score)} vs full data)"
    theirs = "50% of CIFAR-10 (slightly better); about 25% of CIFAR-100 (little or no loss)"
    pruned, full = runs[(runs.method == score) & (runs.keep == keep)], runs[runs.method == "full"]
    if pruned.empty:
        return not_measured(claim, "paper", theirs, f"{score} was not run at {keep:.0%} kept", **where)
    return noninferiority(claim, "paper", theirs, between(pruned, full), MARGIN, **where)


def how_early_claims(runs, scale, dataset, arch):
    """Fig. 1 top: EL2N from early in training selects better subsets than GraNd at init."""
    from ...stats import paired
    from ...verdicts import not_measured, superiority

    claim, theirs = "EL2N from early training beats GraNd at init", "EL2N useful from epochs 1-10; GraNd at init not"
    scores = [names.Method.parse(m).score for m in runs.method.unique()]
    early = sorted(s.epoch for s in scores if s and s.kind == "el2n" and s.epoch >= 1)
    if not early or not (runs.method == "grand_e0").any():
        why = "needs EL2N at an epoch >= 1 and GraNd at 0 in how_early"
        return [
            not_measured(
                claim,
                "reproduction",
                theirs,
                "experiments.how_early is not run" if runs.empty else why,
                dataset=dataset,
                arch=arch,
            )
        ]
    keep = runs.keep.iloc[0]
    diffs = paired(runs, f"el2n_e{early[0]}", "grand_e0", keep=keep)
    claim = f"{claim} (EL2N@{early[0]}, {keep:.0%} kept)"
    return [
        superiority(claim, "paper (Fig. 1 top), reproduction", theirs, diffs, dataset=dataset, arch=arch, scale=scale)
    ]


def curve_claims(curve, how_early, clean, score, regime):
    """The pruning-curve claims, a row each per (dataset, architecture), each judged in its own regime
    (`regime(dataset, arch)`, see claims.py). Label noise's pruning claims are the curve's, at its levels."""
    import pandas as pd

    from ...stats import select
    from .noise import pruning_claims

    rows = []
    for (dataset, arch), runs in curve.groupby(["dataset", "arch"], sort=False):
        scale = regime(dataset, arch)
        early = select(how_early, dataset=dataset, arch=arch) if not how_early.empty else how_early
        # The how-early runs add kept fractions the curve may lack (CIFAR-100's 75%); shared runs once.
        every = pd.concat([runs, early]).drop_duplicates("run_id")
        rows += dataset_claims(every, clean, scale, score, dataset, arch)
        rows += pruning_claims(runs, clean, scale, dataset, arch)
        rows += how_early_claims(early, scale, dataset, arch)
    return rows


def accuracy_table(runs):
    """Mean, std and count of final test accuracy (%), and the mean final train accuracy (%, on the run's
    own subset, un-augmented), by dataset, architecture, noise, method and kept fraction."""
    return (
        runs.assign(accuracy=100 * runs.test_accuracy, train=100 * runs.final_train_accuracy)
        .groupby(["dataset", "arch", "noise", "method", "keep"])
        .agg(mean=("accuracy", "mean"), std=("accuracy", "std"), count=("accuracy", "size"), train=("train", "mean"))
        .round(2)
        .reset_index()
    )


def accuracy_pivot(table):
    """Methods as rows, kept fractions as columns (largest first); the full-data runs fill column 1.0."""
    from ..figures import full_data_per_method

    table = full_data_per_method(table)
    cells = table.assign(
        method=table.method.map(names.label),
        cell=table["mean"].map("{:.2f}".format)
        + " ± "
        + table["std"].fillna(0).map("{:.2f}".format)
        + table["count"].map(" (n={})".format),
    )
    pivot = cells.pivot_table(index=["dataset", "noise", "method"], columns="keep", values="cell", aggfunc="first")
    return pivot[sorted(pivot.columns, reverse=True)]


def published_table(source):
    import pandas as pd

    table = pd.DataFrame(source["accuracy"], index=source["kept"]).T
    table.index = [names.label(m) for m in table.index]
    table.columns.name = "kept"
    return table


def accuracy_tables(results):
    """Ours beside the reproduction's, kept fractions as columns."""
    from .. import published

    theirs = (published.REPRODUCTION_RESNET18, published.REPRODUCTION_PROXY)
    return f"<h3>Final test accuracy (%): ours</h3>\n{accuracy_pivot(results['table']).to_html()}\n" + "".join(
        f"<h3>Published: {source['source']}</h3>\n{published_table(source).to_html()}\n" for source in theirs
    )


def read(study, inputs, results):
    from ..collect import collect_runs

    curve = collect_runs(inputs["curve"])
    return {"curve": curve, "how_early": collect_runs(inputs["how_early"]), "table": accuracy_table(curve)}


def judge(results, regime):
    return curve_claims(results["curve"], results["how_early"], results["clean"], results["study"].curve_score, regime)


EXPERIMENT = Experiment(
    "pruning",
    inputs={"curve": curve_targets, "how_early": how_early_targets},
    read=read,
    figures=(
        Figure("pruning_curve", "Pruning curve", "curve", pruning_curve, below=accuracy_tables),
        Figure("how_early", "How early", "how_early", how_early, "experiments.how_early.activate is false"),
    ),
    claims=judge,
    runs=(("pruning curve", "curve"), ("how early", "how_early")),
)
