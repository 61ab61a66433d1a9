"""The sliding window (Fig. 2): a window of each kept fraction slid over the score ranking, placed by
the share of the set left out above it (harder than the window), clean and under every noise level.

The verdict tests a contrast fixed in advance, paired by repeat: the window leaving out the hardest
`contrast_left_out` (the paper: ~1%, the 500 hardest of 50,000) against the hardest window. The best
window is picked from the data, so it is described, never tested: the best of K noisy windows beats
any one of them by chance, and as a veto it overturned half of the real reproductions (simulated)."""

from .. import layout
from ..experiment import Experiment, Figure, first_regime


def fits(keep, left_out):
    """Whether a window of `keep` can leave out `left_out` above it (the easiest leaves out 1 - keep)."""
    return 0 <= left_out <= 1 - keep + 1e-9  # 1 - 0.9 is 0.0999...


def targets(study):
    if not study.active("window"):
        return []
    window, dataset = study.window, study.window["dataset"]
    return [
        study.path(
            layout.WINDOW + "/result.json",
            dataset=dataset,
            arch=study.arch_of(dataset),
            noise=noise,
            score=window["score"],
            keep=keep,
            left_out=left_out,
            rep=rep,
        )
        for noise in study.noise
        for keep in window["kept"]
        for left_out in window["left_out"]
        if fits(keep, left_out)
        for rep in range(window["repeats"])
    ]


def sliding_window(results, path):
    """Fig. 2: accuracy vs the share of the set left out above the window (symmetric log, so 0 to 1%
    is visible), a line per kept fraction with its band over repeats, a panel per noise level; the
    dotted line marks the contrast window."""
    from matplotlib.ticker import FuncFormatter

    windows, settings = results["windows"], results["study"].window

    from ..figures import PANELS_OF_LINES, save, sns

    data = windows.assign(accuracy=lambda d: 100 * d.test_accuracy, kept=lambda d: d.keep.map("{:.0%}".format))
    grid = sns.relplot(data=data, x="left_out", y="accuracy", hue="kept", col="noise", **PANELS_OF_LINES)
    low, high = data.left_out[data.left_out > 0].min(), data.left_out.max()  # linear up to the first window
    ticks = [0, low] + [t for t in (0.01, 0.1, 1) if 1.5 * low < t <= high]
    for ax in grid.axes.flat:
        ax.set_xscale("symlog", linthresh=low, linscale=0.5)
        ax.set_xlim(-0.2 * low, 1.2 * high)
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda share, _: percent(share)))
        ax.axvline(settings["contrast_left_out"], color="grey", linestyle=":", linewidth=1)
    grid.set_axis_labels("share of the set left out above the window (0: the hardest)", "final test accuracy (%)")
    save(grid.figure, path)


def claims(windows, clean, scale, settings):
    """The Fig. 2 claims per (dataset, arch) the windows ran on: the optimum excludes the hardest (at
    the smallest kept fraction), the penalty disappears with 50% kept, and noise makes it larger.
    `settings`: the config's experiments.window."""
    from ...verdicts import not_measured

    if windows.empty:
        claim = "sliding-window optimum excludes the hardest"
        return [
            not_measured(
                claim, "paper", "optimum excludes the ~500 hardest of 50,000 (1%)", "experiments.window is not run"
            )
        ]
    rows = []
    for (dataset, arch), runs in windows.groupby(["dataset", "arch"], sort=False):
        where = {"dataset": dataset, "arch": arch, "scale": scale}
        rows.append(optimum(runs, clean, settings, **where))
        if 0.5 in set(runs.keep):
            rows.append(half_kept(runs, clean, settings, **where))
        noisy = sorted(set(runs.noise) - {clean})
        if noisy:  # the smallest level: the paper's 10%
            rows.append(noise_shift(runs, clean, noisy[0], settings, **where))
    return rows


def contrast(runs, noise, keep, left_out):
    """Accuracy (points) of the window leaving out `left_out` minus the hardest window, per repeat."""
    from ...stats import between, select

    at = select(runs, noise=noise, keep=keep)
    return between(at[at.left_out == left_out], at[at.left_out == 0])


def best_window(runs, noise, keep):
    """The share and examples left out above the window of highest mean accuracy over repeats, in words."""
    at = runs[(runs.noise == noise) & (runs.keep == keep)]
    best = at.groupby("left_out").test_accuracy.mean().idxmax()
    return f"{best:.1%} of the set ({int(at[at.left_out == best].excluded_hardest.iloc[0])} examples)"


def percent(share):
    return f"{100 * share:g}%"


def optimum(runs, clean, settings, **where):
    """The contrast at the smallest kept fraction, clean; where the best window lies, described."""
    from ... import verdicts

    keep, left_out = runs.keep.min(), settings["contrast_left_out"]
    where_best = best_window(runs, clean, keep)
    return verdicts.superiority(
        f"sliding-window optimum excludes the hardest: leaving out {percent(left_out)} beats the hardest "
        f"window ({keep:.0%} kept, clean)",
        "paper",
        "optimum excludes the ~500 hardest of 50,000 (1%)",
        contrast(runs, clean, keep, left_out),
        describe=f"the best window leaves out {where_best}",
        **where,
    )


def half_kept(runs, clean, settings, **where):
    """The same contrast with 50% kept lies below +verdicts.MARGIN: the hardest window costs nothing
    (one-sided: the hardest window doing better holds it too)."""
    from ... import verdicts

    left_out = settings["contrast_left_out"]
    where_best = best_window(runs, clean, 0.5)
    return verdicts.nonsuperiority(
        f"with 50% kept the penalty of the hardest window disappears (leaving out {percent(left_out)} vs "
        "the hardest, clean)",
        "paper",
        "no penalty for the hardest examples at 50% kept",
        contrast(runs, clean, 0.5, left_out),
        verdicts.MARGIN,
        describe=f"the best window leaves out {where_best}",
        **where,
    )


def noise_shift(runs, clean, noisy, settings, **where):
    """The contrast is larger under noise than clean, paired by repeat: the hardest window, which now
    holds the mislabelled examples, costs more."""
    from ... import verdicts

    keep, left_out = runs.keep.min(), settings["contrast_left_out"]
    noisy_contrast, clean_contrast = (contrast(runs, n, keep, left_out) for n in (noisy, clean))
    shift = (noisy_contrast - clean_contrast).dropna()
    shift.attrs = {"unmatched": sorted(set(noisy_contrast.index) ^ set(clean_contrast.index)),
                   "scope": noisy_contrast.attrs["scope"]}  # fmt: skip
    where_best = {n: best_window(runs, n, keep) for n in (noisy, clean)}
    return verdicts.superiority(
        f"...more so under {noisy:.0%} label noise: leaving out {percent(left_out)} gains more over the "
        f"hardest window ({keep:.0%} kept)",
        "paper",
        "noise moves the optimum further from the hardest",
        shift,
        describe=f"contrast {noisy_contrast.mean():+.2f} noisy vs {clean_contrast.mean():+.2f} clean points; "
        f"the best window leaves out {where_best[noisy]} noisy vs {where_best[clean]} clean",
        **where,
    )


def read(study, inputs, results):
    from ..collect import collect_runs

    return {"windows": collect_runs(inputs["window"])}


def judge(results, regime):
    windows = results["windows"]
    return claims(windows, results["clean"], first_regime(regime, windows), results["study"].window)


FIGURE = Figure("sliding_window", "Sliding window", "windows", sliding_window, "experiments.window.activate is false")
EXPERIMENT = Experiment("window", {"window": targets}, read, (FIGURE,), judge, runs=(("sliding window", "windows"),))
