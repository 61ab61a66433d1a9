"""Where pruning starts to pay (Sorscher et al. 2022): the gain of keeping the hardest (keep_max) and the
easiest (keep_min) examples over random subsets, against the size N of the training set.

At each size, a nested class-balanced subset of the dataset is a dataset of its own: scored by its own
short scoring runs, then retrained on at every kept fraction with random, keep_max and keep_min subsets
(paired by init seed) and on all of it. Keeping the hardest should beat random only where data is
abundant, keeping the easiest where it is scarce; the sign of keep_max - random at a study's own size
is the regime its other verdicts are labelled with (measured here, not assumed).
"""

import numpy as np

from .. import names
from ..experiment import Experiment, Figure
from .pruning import retrain_result


def methods(score):
    """The selections of every size and kept fraction: random, the hardest kept, the easiest kept."""
    return ["random", score, f"easy-{score}"]


def targets(study):
    if not study.active("size_sweep"):
        return []
    sweep, arch = study.sweep, study.arch_of(study.sweep["dataset"])
    paths = []
    for dataset in study.sizes:
        paths += [
            retrain_result(study, dataset, arch, study.clean, "full", 1.0, r) for r in range(sweep["full_repeats"])
        ]
        paths += [
            retrain_result(study, dataset, arch, study.clean, m, k, r)
            for m in methods(sweep["score"])
            for k in sweep["kept"]
            for r in range(sweep["repeats"])
        ]
    return paths


# The regime a study's own size is in, as its verdicts say it.
# keep-hard: keep_max beats random; keep-easy: keep_min does; random-best: random beats both.
REGIMES = ("keep-hard regime", "keep-easy regime", "random-best regime", "regime unresolved", "regime underpowered")
COLUMNS = ["n", "keep", "method", "gain", "ci_low", "ci_high", "repeats", "full_accuracy", "full_train_accuracy"]


def gains(runs, score):
    """`figures/size_sweep.csv`: at each size n and kept fraction, keep_max (`score`) and keep_min
    (`easy-<score>`) minus random, and full data minus random (method "full": the cost of random
    pruning, how much data matters at n), in accuracy points paired by init seed, with the full-data
    test and (un-augmented) train accuracy at n."""
    import pandas as pd

    from ...stats import between, bounds

    rows = []
    for n, at_n in runs.groupby("num_examples"):
        full = at_n[at_n.method == "full"]
        measured = {"full_accuracy": 100 * full.test_accuracy.mean()}
        measured["full_train_accuracy"] = 100 * full.final_train_accuracy.mean()
        for keep in sorted(set(at_n.keep) - {1.0}):
            here = at_n[at_n.keep == keep]
            random = here[here.method == "random"]
            compared = {m: here[here.method == m] for m in (score, f"easy-{score}")} | {"full": full}
            for method, chosen in compared.items():
                est = bounds(between(chosen, random))
                rows.append({"n": n, "keep": keep, "method": method, "gain": est.estimate, "ci_low": est.ci_low,
                             "ci_high": est.ci_high, "repeats": est.n, **measured})  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def crossovers(table, score):
    """Per kept fraction, the size N* where keep_max - random changes sign, interpolated on log N
    between the two sizes around it (NaN when the grid holds no sign change); the first one from
    the smallest size up."""
    import pandas as pd

    rows = []
    for keep, line in table[table.method == score].sort_values("n").groupby("keep"):
        # Rounded: a difference of equal accuracies is 0, not a float's -1e-16.
        n, gain = line.n.to_numpy(float), line.gain.to_numpy(float).round(9)
        found = [i for i in range(len(n) - 1) if gain[i] * gain[i + 1] < 0]
        star, low, high = np.nan, np.nan, np.nan
        if found:
            i = found[0]
            log_n = np.log(n[i]) + (0 - gain[i]) / (gain[i + 1] - gain[i]) * (np.log(n[i + 1]) - np.log(n[i]))
            star, low, high = float(np.exp(log_n)), n[i], n[i + 1]
        rows.append({"keep": keep, "n_star": star, "between_low": low, "between_high": high})
    return pd.DataFrame(rows, columns=["keep", "n_star", "between_low", "between_high"])


def size_sweep(results, path):
    """Gains over random against N (log scale) and against full-data accuracy: keep_max and keep_min
    with their intervals, the cost of random pruning dashed, N* dotted where the grid holds it."""
    from ..figures import plt, save

    table, crossing, score = results["sweep_table"], results["crossovers"], results["study"].sweep["score"]

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), squeeze=False)
    styles = {score: ("tab:red", "-"), f"easy-{score}": ("tab:blue", "-"), "full": ("gray", "--")}
    label = names.label(score)
    shown = {score: f"{label} keep_max - random", f"easy-{score}": f"{label} keep_min - random",
             "full": "full data - random (cost of random pruning)"}  # fmt: skip
    for ax, x, xlabel in (
        (axes[0][0], "n", "training-set size N"),
        (axes[0][1], "full_accuracy", "full-data test accuracy at N (%)"),
    ):
        for (method, keep), line in table.sort_values("n").groupby(["method", "keep"], sort=False):
            color, style = styles[method]
            marker = "o" if keep == table.keep.min() else "s"
            err = np.vstack([line.gain - line.ci_low, line.ci_high - line.gain])
            ax.errorbar(line[x], line.gain, yerr=np.nan_to_num(err), color=color, linestyle=style, marker=marker,
                        capsize=3, label=f"{shown[method]}, {keep:.0%} kept")  # fmt: skip
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set(xlabel=xlabel, ylabel="accuracy gain over random (points)")
    sizes = sorted(table.n.unique())
    axes[0][0].set_xscale("log")
    axes[0][0].set_xticks(sizes, labels=[f"{n:,}" for n in sizes], minor=False)
    axes[0][0].minorticks_off()
    for crossing_row in crossing.dropna().itertuples():
        axes[0][0].axvline(
            crossing_row.n_star, color="tab:red", linestyle=":", label=f"N* ({crossing_row.keep:.0%} kept)"
        )
    axes[0][0].legend(fontsize=7)
    save(fig, path)


def paired_gains(runs, method):
    """(log2 n, gain in points) per size and repeat: `method` minus random at the same size, kept
    fraction and init seed."""
    from ...stats import between

    points = []
    for n, at_n in runs.groupby("num_examples"):
        diffs = between(at_n[at_n.method == method], at_n[at_n.method == "random"])
        points += [(np.log2(n), d) for d in diffs]
    return np.array(points).reshape(-1, 2)


def claims(runs, score, dataset, arch):
    """Sorscher et al.: keep_max - random rises with N; keep_min beats random where data is scarce.
    A row each per kept fraction (`runs`: the sweep's runs of one dataset and architecture)."""
    from ...stats import paired
    from ...verdicts import not_measured, superiority

    rising, scarce = "keep_max - random rises with N", "keep_min beats random where data is scarce"
    source, where = "beyond (Sorscher et al. 2022)", {"dataset": dataset, "arch": arch}
    if runs.empty:
        return [
            not_measured(c, source, "predicted", "experiments.size_sweep is not run", **where) for c in (rising, scarce)
        ]
    rows = []
    smallest = runs.num_examples.min()
    for keep in sorted(set(runs.keep) - {1.0}):
        at_keep = runs[runs.keep == keep]
        rows.append(rises(at_keep, score, f"{rising} ({names.label(score)}, {keep:.0%} kept)", source, where))
        diffs = paired(at_keep, f"easy-{score}", "random", num_examples=smallest)
        claim = f"{scarce} ({names.label(score)}, N={smallest}, {keep:.0%} kept)"
        rows.append(superiority(claim, source, "keep the easiest when data is scarce", diffs, **where))
    return rows


def rises(runs, score, claim, source, where):
    """The slope of keep_max - random (points per doubling of N) with the sizes as its units: each size
    has one subset scored once, so its mean gain over repeats is one point and the slope's interval
    covers the subsets' variation (n - 2 df over n sizes). Needs 3 repeats at each of 3 sizes or more."""
    from ...stats import MIN_REPEATS, slope_beyond
    from ...verdicts import positive, row, tested

    theirs = "keep_max - random grows with N (the crossover)"
    per_size = runs[runs.method == score].groupby("num_examples").run.nunique()
    if len(per_size) < MIN_REPEATS or per_size.min() < MIN_REPEATS:
        repeats = per_size.min() if len(per_size) else 0
        reason = f"{repeats} repeats at {len(per_size)} sizes (needs {MIN_REPEATS} at {MIN_REPEATS})"
        return row(claim, source, theirs, "underpowered", reason, **where, ours="too few runs")
    points = paired_gains(runs, score)
    sizes = np.unique(points[:, 0])
    means = np.array([points[points[:, 0] == x, 1].mean() for x in sizes])
    est, test = slope_beyond(sizes, means)
    unit = "points per doubling of N"
    ours = f"{est.estimate:+.2f} {unit} [{est.ci_low:+.2f}, {est.ci_high:+.2f}] over {est.n} sizes (their mean gains)"
    return tested(claim, source, theirs, est, test, positive(1, unit), ours=ours, scope="method", **where)


def regimes(runs, study_sizes, score, curve):
    """{(dataset, arch): verdicts.Scale} of each dataset the sweep ran at its own size: which end of the
    ranking beats random there, at the kept fraction nearest 0.5, says which regime the study's verdicts
    are in; where those runs are the pruning curve's own (`curve`), the label says it restates them."""
    from ...stats import between, bounds, closest
    from ...verdicts import Scale

    found = {}
    for (dataset, arch), n in study_sizes.items():
        at_n = runs[(runs.num_examples == n) & (runs.keep < 1)]
        if at_n.empty:
            continue
        here = at_n[at_n.keep == closest(at_n.keep, 0.5)]
        random = here[here.method == "random"]
        hard, easy = (between(here[here.method == m], random) for m in (score, f"easy-{score}"))
        measured = "; ".join(
            f"{names.label(score)} {name} - random {est.estimate:+.2f} points [{est.ci_low:+.2f}, {est.ci_high:+.2f}]"
            for name, est in (("keep_max", bounds(hard)), ("keep_min", bounds(easy)))
        )
        measured = f"measured by the size sweep at N={n}, {here.keep.iloc[0]:.0%} kept, n={len(hard)}: {measured}"
        if set(here.run_id) & set(curve.get("run_id", ())):
            measured += "; on the pruning curve's own runs: on its rows, the label restates their data"
        found[(dataset, arch)] = Scale(regime_of(hard, easy), measured)
    return found


def regime_of(hard, easy):
    """The regime from the paired differences keep_max - random (`hard`) and keep_min - random (`easy`):
    the end of the ranking that beats random, or random that beats both (both below 0: the larger of
    their p-values). The three labels are tested as one family (Holm), so that with no difference a
    definite label comes at most 5% of the time."""
    from ...stats import ALPHA, MIN_REPEATS, holm, mean_beyond

    if min(len(hard), len(easy)) < MIN_REPEATS:
        return REGIMES[4]
    above = [mean_beyond(diffs, 0.0, 1) for diffs in (hard, easy)]
    hard_wins, easy_wins, random_wins = holm([above[0].p, above[1].p, max(t.p_against for t in above)]) <= ALPHA
    if hard_wins and not easy_wins:
        return REGIMES[0]
    if easy_wins and not hard_wins:
        return REGIMES[1]
    if random_wins:
        return REGIMES[2]
    return REGIMES[3]


def read(study, inputs, results):
    """The sweep's runs, the gains over random at each size, where keep_max crosses 0, and the regime
    measured at the study's own size (which every other experiment's claims are labelled with)."""
    from ..collect import collect_runs

    runs, score, swept = collect_runs(inputs["sweep"]), study.sweep["score"], study.sweep["dataset"]
    table, main = gains(runs, score), (swept, study.arch_of(swept))
    return {"sweep": runs, "sweep_table": table, "crossovers": crossovers(table, score), "sweep_main": main,
            "regimes": regimes(runs, {main: study.train_size(swept)}, score, results.get("curve", {}))}  # fmt: skip


def sweep_tables(results):
    """The size sweep's gains (points over random, paired by init seed) and where keep_max crosses 0."""
    gains = results["sweep_table"].assign(method=lambda d: d.method.map(names.label)).round(2)
    crossing = results["crossovers"].round(0)
    return (
        f"<h3>Gains over random (figures/size_sweep.csv)</h3>{gains.to_html(index=False)}"
        f"<h3>Crossover N* of keep_max - random (NaN: no sign change on the grid)</h3>{crossing.to_html(index=False)}"
    )


NOT_RUN = "experiments.size_sweep.activate is false"
TITLE = "Where pruning starts to pay: the size sweep"
EXPERIMENT = Experiment(
    "size_sweep",
    inputs={"sweep": targets},
    read=read,
    figures=(Figure("size_sweep", TITLE, "sweep_table", size_sweep, NOT_RUN, below=sweep_tables),),
    claims=lambda results, regime: claims(results["sweep"], results["study"].sweep["score"], *results["sweep_main"]),
    runs=(("size sweep", "sweep"),),
)
