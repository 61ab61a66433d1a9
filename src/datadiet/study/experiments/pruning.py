"""The pruning curve (Fig. 1 bottom, and under label noise) and how early scores work (Fig. 1 top):
retraining on the subsets each method keeps, for the same number of steps as full data."""

from .. import layout, names


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
    return [f"{kind}_e{t}" for kind in ("grand", "el2n") for t in epochs] + ["forgetting", "random"]


def how_early_targets(study):
    """One kept fraction per dataset, GraNd@t and EL2N@t for every early t, with forgetting and random
    as reference lines (clean labels)."""
    return [
        retrain_result(study, dataset, study.arch_of(dataset), study.clean, m, spec["how_early_keep"], r)
        for dataset, spec in study.datasets.items()
        for m in how_early_methods(study)
        for r in study.repeats
    ]


def pruning_curve(runs, path):
    """Final test accuracy vs fraction pruned, a line per method with a min-max band over repeats,
    the full-data accuracy as a dashed line; a panel per dataset and label-noise level."""
    from ...figures import PANELS_OF_LINES, full_data_per_method, save, sns

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


def how_early(runs, path):
    """Fig. 1 top: final accuracy at one kept fraction vs the epoch the score was computed at;
    forgetting (end of training) and random as horizontal lines."""
    from ...figures import plt, save, sns

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


def el2n_beats_random(runs, clean, small, score):
    from ...claims import closest, difference, measured, row

    keep = closest(runs[runs.method == score].keep, 0.5)
    diff, spread = difference(runs, score, "random", noise=clean, keep=keep)
    return row(
        f"{names.label(score)} beats random at moderate pruning ({keep:.0%} kept)",
        "paper, reproduction",
        measured(diff, spread),
        "+1.68 points at 50% kept (reproduction, EL2N@20)",
        diff > 0,
        abs(diff) > spread,
        small,
    )


def grand_init_vs_input_norm(runs, clean, small):
    from ...claims import closest, difference, measured, row

    keep = closest(runs[runs.method == "grand_e0"].keep, 0.5)
    diff, spread = difference(runs, "grand_e0", "input_norm", noise=clean, keep=keep)
    # The claim is an absence: GraNd@0 is not better than input norm. It holds unless GraNd@0 wins
    # by more than the spread.
    claim = f"GraNd at init does not beat input norm ({keep:.0%} kept)"
    return row(
        claim, "reproduction", measured(diff, spread), "-0.22 points at 50% kept", not diff > spread, True, small
    )


def run_to_run_spread(runs, clean):
    """Spread of the difference of two runs, from the full-data repeats: the yardstick for
    experiments run once per point (the sliding window by default)."""
    import numpy as np

    full = 100 * runs[(runs.method == "full") & (runs.noise == clean)].test_accuracy
    return float(np.sqrt(2) * full.std(ddof=1)) if len(full) > 1 else 0.0


def ccs_at_high_pruning(runs, clean, small, score):
    from ...claims import difference, row

    keep = runs[runs.method == f"ccs-{score}"].keep.min()
    diff, spread = difference(runs, f"ccs-{score}", score, noise=clean, keep=keep)
    vs_random, _ = difference(runs, f"ccs-{score}", "random", noise=clean, keep=keep)
    return row(
        f"CCS beats score-only pruning at high pruning ({keep:.0%} kept)",
        "beyond (Zheng et al. 2023)",
        f"{diff:+.2f} points vs {names.label(score)}, {vs_random:+.2f} vs random (spread {spread:.2f})",
        ">= 7 points above random at 90% pruned",
        diff > 0,
        abs(diff) > spread,
        small,
    )
