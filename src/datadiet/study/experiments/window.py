"""The sliding window (Fig. 2): a window of each kept fraction slid over the score ranking, clean and
under every noise level."""

from .. import layout


def targets(study):
    window, dataset = study.window, study.window["dataset"]
    return [
        study.path(
            layout.WINDOW + "/result.json",
            dataset=dataset,
            arch=study.arch_of(dataset),
            noise=noise,
            score=window["score"],
            keep=keep,
            position=position,
            rep=rep,
        )
        for noise in study.noise
        for keep in window["kept"]
        for position in window["positions"]
        for rep in range(window["repeats"])
    ]


def sliding_window(windows, path):
    """Fig. 2: accuracy of a window of the score ranking vs where the window starts (0: easiest
    examples, 1: the hardest window), a line per kept fraction, a panel per noise level."""
    from ...figures import PANELS_OF_LINES, save, sns

    data = windows.assign(accuracy=lambda d: 100 * d.test_accuracy, kept=lambda d: d.keep.map("{:.0%}".format))
    grid = sns.relplot(data=data, x="start", y="accuracy", hue="kept", col="noise", **PANELS_OF_LINES)
    grid.set_axis_labels("window start (fraction of the ranking, easiest = 0)", "final test accuracy (%)")
    save(grid.figure, path)


def window_optimum(windows, clean, small, floor):
    """The optimum window excludes the hardest examples: the hardest window is beaten."""
    from ...claims import row

    keep = windows.keep.min()
    data = windows[(windows.noise == clean) & (windows.keep == keep)]
    penalty, spread, excluded = window_penalty(data, floor)
    return row(
        f"sliding-window optimum excludes the hardest examples ({keep:.0%} kept, clean)",
        "paper",
        f"best window beats the hardest by {penalty:.2f} points (spread {spread:.2f}); "
        f"it leaves out the {excluded} hardest",
        "optimum excludes the ~500 hardest of 50,000 (1%)",
        penalty > 0,
        penalty > spread,
        small,
    )


def window_penalty(data, floor):
    """(accuracy of the best window minus the hardest window, spread, examples harder than the
    best window); the spread is at least `floor` (single runs have no spread of their own)."""
    import numpy as np

    by_start = data.groupby("start").test_accuracy.agg(["mean", "std"]).fillna(0) * 100
    best, hardest = by_start["mean"].idxmax(), by_start.index.max()
    penalty = by_start.loc[best, "mean"] - by_start.loc[hardest, "mean"]
    spread = max(floor, float(np.hypot(by_start.loc[best, "std"], by_start.loc[hardest, "std"])))
    excluded = int(data[data.start == best].excluded_hardest.iloc[0])
    return penalty, spread, excluded


def window_noise(windows, clean, noisy, small, floor):
    import numpy as np

    from ...claims import row

    keep = windows.keep.min()
    clean_penalty, clean_spread, clean_excluded = window_penalty(
        windows[(windows.noise == clean) & (windows.keep == keep)], floor
    )
    noisy_penalty, noisy_spread, noisy_excluded = window_penalty(
        windows[(windows.noise == noisy) & (windows.keep == keep)], floor
    )
    diff, spread = noisy_penalty - clean_penalty, float(np.hypot(clean_spread, noisy_spread))
    return row(
        f"...more so under {noisy:.0%} label noise",
        "paper",
        f"hardest-window penalty {noisy_penalty:.2f} noisy vs {clean_penalty:.2f} clean points; "
        f"optimum leaves out {noisy_excluded} vs {clean_excluded} hardest",
        "noise moves the optimum further from the hardest",
        diff > 0,
        abs(diff) > spread,
        small,
    )
