"""The study's report: read result files, draw the figures, write one self-contained HTML page."""

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .. import selection
from ..recipe import run_seeds
from ..runtime import files
from . import claims, figures, layout, names, published
from .experiments import lmc, noise, ntk, pruning, scores, size_sweep, transfer, window

RUN_COLUMNS = ["dataset", "arch", "noise", "method", "keep", "run", "test_accuracy", "final_train_accuracy",
               "num_examples", "train_size", "run_id"]  # fmt: skip


def collect_runs(result_paths):
    """One row per training run: dataset, architecture, noise, method, kept fraction, repeat,
    final test and train accuracy and its MLflow run (no rows, these columns, for an experiment not run)."""
    if not result_paths:
        return pd.DataFrame(columns=RUN_COLUMNS)
    rows = []
    for path in result_paths:
        result = files.read_json(path)
        left_out = result.get("selection", {}).get("left_out")
        if left_out is not None:
            # Where the window sits: the share of the set and the examples above it (harder than it).
            offset = selection.window_offset(result["num_examples"], result["keep"], left_out)
            result.update(left_out=left_out, excluded_hardest=result["num_examples"] - offset - result["train_size"])
        rows.append(result)
    return pd.DataFrame(rows)


def collect_scores(score_paths):
    """Mean scores as {(dataset, arch, noise): DataFrame with a column per score}, the per-seed
    columns as {(dataset, arch, noise): {score: DataFrame}}, and the MLflow runs behind each file."""
    means, seeds, provenance = {}, {}, []
    for path in map(Path, score_paths):
        where = layout.parse(layout.MEAN_SCORES, path)
        dataset, arch, level = where["dataset"], where["arch"], float(where["noise"])
        made_by = files.read_json(files.provenance_path(path))
        table = files.read_scores(path)
        key = (dataset, arch, level)
        means.setdefault(key, {})[made_by["score"]] = table["mean"].to_numpy()
        per_seed = table[[c for c in table.columns if c.startswith("seed")]]
        if per_seed.shape[1] > 1:
            seeds.setdefault(key, {})[made_by["score"]] = per_seed
        provenance.append(
            {
                "dataset": dataset,
                "arch": arch,
                "noise": level,
                "score": names.label(made_by["score"]),
                "file": str(path),
                "runs": " ".join(made_by["runs"]),
            }
        )
    return {k: pd.DataFrame(v) for k, v in means.items()}, seeds, pd.DataFrame(provenance)


def collect_corrupted(label_paths):
    """{(dataset, noise): bool array, True where the label was corrupted}."""
    corrupted = {}
    for path in map(Path, label_paths):
        labels = files.load_tensors(path)
        mask = np.zeros(len(labels["labels"]), dtype=bool)
        mask[labels["corrupted"].numpy()] = True
        where = layout.parse(layout.LABELS, path)
        corrupted[(where["dataset"], float(where["noise"]))] = mask
    return corrupted


def job_benchmarks(bench_dir):
    """Wall time and peak memory of the training and scoring jobs, by rule (Snakemake's benchmark:
    files, <bench_dir>/<dataset>/<arch>/<rule>/...tsv): where the study's time went."""
    rows = []
    for path in sorted(Path(bench_dir).rglob("*.tsv")):
        measured = pd.read_csv(path, sep="\t")
        rows += [
            {"rule": path.relative_to(bench_dir).parts[2], "seconds": s, "max_rss_mb": m}
            for s, m in zip(measured["s"], pd.to_numeric(measured["max_rss"], errors="coerce"))
        ]
    if not rows:
        raise ValueError(f"no benchmark files under {bench_dir}")
    return (
        pd.DataFrame(rows)
        .groupby("rule")
        .agg(
            jobs=("seconds", "size"),
            total_s=("seconds", "sum"),
            mean_s=("seconds", "mean"),
            max_s=("seconds", "max"),
            max_rss_mb=("max_rss_mb", "max"),
        )
        .round(1)
        .sort_values("total_s", ascending=False)
        .reset_index()
    )


def spearman_matrix(table):
    rho = spearmanr(table.to_numpy()).statistic
    return pd.DataFrame(rho, index=table.columns, columns=table.columns)


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
    table = figures.full_data_per_method(table)
    cells = table.assign(
        method=table.method.map(names.label),
        cell=table["mean"].map("{:.2f}".format)
        + " ± "
        + table["std"].fillna(0).map("{:.2f}".format)
        + table["count"].map(" (n={})".format),
    )
    pivot = cells.pivot_table(index=["dataset", "noise", "method"], columns="keep", values="cell", aggfunc="first")
    return pivot[sorted(pivot.columns, reverse=True)]


def claims_html(table):
    return table.to_html(index=False, classes="prose", float_format="{:.3g}".format, na_rep="")


def published_table(source):
    table = pd.DataFrame(source["accuracy"], index=source["kept"]).T
    table.index = [names.label(m) for m in table.index]
    table.columns.name = "kept"
    return table


def image_tag(path):
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{encoded}" style="max-width:100%">'


def section(title, caption_dir, name, body):
    """A report section: heading, the figure's caption (the same text as the Snakemake report's), body."""
    caption = html.escape(" ".join((Path(caption_dir) / f"{name}.rst").read_text().split()))
    return f"<h2>{title}</h2>\n<p>{caption}</p>\n{body}\n"


FIGURES = (
    "pruning_curve",
    "size_sweep",
    "how_early",
    "sliding_window",
    "noise_ranking",
    "transfer",
    "spearman",
    "seeds",
    "ntk_velocity",
    "lmc_barrier",
)


def read_results(study, inputs):
    """Every result file the report reads, as tables (see collect_*), keyed by what they are."""
    main_dataset, swept = study.first, study.sweep["dataset"]
    main, clean = (main_dataset, study.arch_of(main_dataset)), float(study.clean)
    means, per_seed, score_runs = collect_scores(inputs["scores"])
    corrupted = collect_corrupted(inputs["labels"])
    found = {
        "curve": collect_runs(inputs["curve"]),
        "how_early": collect_runs(inputs["how_early"]),
        "windows": collect_runs(inputs["window"]),
        "window_settings": study.window,
        "lmc_settings": study.lmc,
        "transfer": collect_runs(inputs["transfer"]),
        "ntk": read_tables(inputs["ntk"]),
        "lmc": read_tables(inputs["lmc"]),
        "sweep": collect_runs(inputs["sweep"]),
        "sweep_settings": study.sweep,
        "sweep_main": (swept, study.arch_of(swept)),
        "clean_scores": means[(*main, clean)],
        "score_runs": score_runs,
        "noisy_scores": {level: m for (d, a, level), m in means.items() if (d, a) == main and level != clean},
        "corrupted": {level: c for (d, level), c in corrupted.items() if d == main_dataset},
        "agreement": scores.seed_agreement(per_seed.get((*main, clean), {})),
        "compute": job_benchmarks(inputs["benchmarks"]),
        "clean": clean,
        "main": main,
    }
    found["ranking"] = pd.concat(
        [pd.DataFrame()]
        + [
            noise.corrupted_in_top(noisy, found["corrupted"][level]).assign(noise=level)
            for level, noisy in found["noisy_scores"].items()
        ]
    )
    found["correlations"] = spearman_matrix(found["clean_scores"])
    found["table"] = accuracy_table(found["curve"])
    score = study.sweep["score"]
    found["sweep_table"] = size_sweep.gains(found["sweep"], score)
    found["crossovers"] = size_sweep.crossovers(found["sweep_table"], score)
    own_size = {found["sweep_main"]: study.train_size(swept)}
    found["regimes"] = size_sweep.regimes(found["sweep_table"], own_size, score)
    return found


def read_tables(paths):
    """The CSV files of an experiment as one table (empty for an experiment not run)."""
    return pd.concat([pd.read_csv(p) for p in paths]) if paths else pd.DataFrame()


def draw(found, out_dir):
    """Every figure, or for an experiment the study did not run, a figure saying so; {name: path}."""
    paths = {name: out_dir / f"{name}.png" for name in FIGURES}
    settings, sweep_score = found["lmc_settings"], found["sweep_settings"]["score"]
    drawings = {
        "pruning_curve": (found["curve"], lambda path: pruning.pruning_curve(found["curve"], path)),
        "size_sweep": (
            found["sweep_table"],
            lambda path: size_sweep.size_sweep(found["sweep_table"], found["crossovers"], sweep_score, path),
        ),
        "how_early": (found["how_early"], lambda path: pruning.how_early(found["how_early"], path)),
        "sliding_window": (
            found["windows"],
            lambda path: window.sliding_window(found["windows"], path, found["window_settings"]),
        ),
        "noise_ranking": (found["ranking"], lambda path: noise.noise_ranking(found["ranking"], path)),
        "transfer": (found["transfer"], lambda path: transfer.accuracy_bars(found["transfer"], path)),
        "spearman": (found["correlations"], lambda path: scores.spearman_heatmap(found["correlations"], path)),
        "seeds": (found["agreement"], lambda path: scores.seeds(found["agreement"], path)),
        "ntk_velocity": (found["ntk"], lambda path: ntk.ntk_velocity(found["ntk"], path)),
        "lmc_barrier": (
            found["lmc"],
            lambda path: lmc.lmc_barrier(found["lmc"], path, settings["epsilon"], settings["fit_error"]),
        ),
    }
    for name, (table, draw_it) in drawings.items():
        if table.empty:
            figures.not_run(paths[name], NOT_RUN.get(name, "not run in this study"))
        else:
            draw_it(paths[name])
    return paths


# Why a figure has nothing to show: the config switch that leaves its experiment out.
NOT_RUN = {
    "size_sweep": "experiments.size_sweep.activate is false",
    "how_early": "experiments.how_early.activate is false",
    "sliding_window": "experiments.window.activate is false",
    "noise_ranking": "noise.levels has no level above 0",
    "transfer": "experiments.transfer.activate is false",
    "ntk_velocity": "experiments.ntk.activate is false",
    "lmc_barrier": "experiments.lmc.activate is false",
}


def build(study, store, captions, inputs, out_dir, html_path):
    """Read every result file, draw every figure, compute the claims table and write the page."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    found = read_results(study, inputs)
    score = study.curve_score
    found["claims"] = claims.table(found, score)
    paths = draw(found, out_dir)
    files.write_text(found["table"].to_csv(index=False), out_dir / "accuracy.csv")
    files.write_text(found["sweep_table"].to_csv(index=False), out_dir / "size_sweep.csv")
    files.write_text(found["claims"].to_csv(index=False), out_dir / "claims.csv")
    files.write_text(every_run(found).to_csv(index=False), out_dir / "runs.csv")
    files.write_text(found["compute"].to_csv(index=False), out_dir / "job_benchmarks.csv")
    files.write_text(page(study, store, captions, found, paths), html_path)


def every_run(found):
    """One row per training run of every experiment: its init seed, the scoring seeds its subset was chosen
    by (where the score file says them), its accuracies, what it trained in and its MLflow run."""
    runs = pd.concat(
        [
            found["curve"].assign(experiment="pruning curve"),
            found["how_early"].assign(experiment="how early"),
            found["windows"].assign(experiment="sliding window"),
            found["transfer"].assign(experiment="transfer"),
            found["sweep"].assign(experiment="size sweep"),
        ]
    )
    # Results written before these were recorded have neither column.
    runs = runs.assign(**{column: None for column in ("score_seeds", "trained_in") if column not in runs})
    runs = runs.drop_duplicates("run_id").assign(
        method=lambda d: d.method.map(names.label),
        init_seed=lambda d: d.run.map(lambda run: run_seeds(int(run))["model"]),
        scoring_seeds=lambda d: d.score_seeds.map(
            lambda seeds: " ".join(map(str, seeds)) if isinstance(seeds, list) else ""
        ),
        test_accuracy=lambda d: (100 * d.test_accuracy.astype(float)).round(2),
        train_accuracy=lambda d: (100 * d.final_train_accuracy.astype(float)).round(2),
    )
    columns = ["experiment", "dataset", "arch", "noise", "method", "keep", "run", "init_seed", "scoring_seeds",
               "test_accuracy", "train_accuracy", "trained_in", "run_id"]  # fmt: skip
    return runs[columns].sort_values(columns[:7])


def sweep_tables(found):
    """The size sweep's gains (points over random, paired by init seed) and where keep_max crosses 0."""
    if found["sweep_table"].empty:
        return ""
    gains = found["sweep_table"].assign(method=lambda d: d.method.map(names.label)).round(2)
    crossing = found["crossovers"].round(0)
    return (
        f"<h3>Gains over random (figures/size_sweep.csv)</h3>{gains.to_html(index=False)}"
        f"<h3>Crossover N* of keep_max - random (NaN: no sign change on the grid)</h3>{crossing.to_html(index=False)}"
    )


def page(study, store, captions, found, paths):
    config = study.config

    def figure_section(title, name, extra=""):
        return section(title, captions, name, image_tag(paths[name]) + extra)

    published_rho = "".join(
        f"<li>{names.label(a)} vs {names.label(b)}: {rho}</li>"
        for (a, b), rho in published.REPRODUCTION_SPEARMAN.items()
    )
    ours_rho = found["correlations"].round(3).rename(index=names.label, columns=names.label)
    datasets = ", ".join(f"{name} ({study.arch_of(name)})" for name in study.datasets)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>datadiet: {html.escape(study.name)}</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:88%}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
table.prose td,table.prose th{{text-align:left}}h2{{border-bottom:1px solid #ddd}}</style></head><body>
<h1>Deep Learning on a Data Diet: study <code>{html.escape(study.name)}</code></h1>
<p>Datasets {html.escape(datasets)}; {len(found["clean_scores"])} training examples in {study.first}; width
{config["model"]["width"]} ({config["model"]["init"]} init), {config["train"]["epochs"]} epochs-equivalent of steps
({config["train"]["budget"]} budget); scores averaged over {config["scores"]["seeds"]} seeds,
{config["pruning"]["repeats"]} retraining repeats per point, selection <code>{config["pruning"]["strategy"]}</code>,
label noise levels {config["noise"]["levels"]}. MLflow store: <code>{html.escape(store["uri"])}</code>, experiment
<code>{html.escape(store["experiment"])}</code>.</p>
{section("Claims", captions, "claims", claims_html(found["claims"]))}
{figure_section("Pruning curve", "pruning_curve")}
<h3>Final test accuracy (%): ours</h3>
{accuracy_pivot(found["table"]).to_html()}
<h3>Published: {published.REPRODUCTION_RESNET18["source"]}</h3>
{published_table(published.REPRODUCTION_RESNET18).to_html()}
<h3>Published: {published.REPRODUCTION_PROXY["source"]}</h3>
{published_table(published.REPRODUCTION_PROXY).to_html()}
{figure_section("Where pruning starts to pay: the size sweep", "size_sweep", sweep_tables(found))}
{figure_section("How early", "how_early")}
{figure_section("Sliding window", "sliding_window")}
{figure_section("Label noise: where the corrupted examples rank", "noise_ranking")}
{figure_section("Architecture transfer", "transfer")}
{figure_section("Rank correlation of scores", "spearman", ours_rho.to_html())}
<p>Published (reproduction, CIFAR-10, ResNet18):</p><ul>{published_rho}</ul>
{figure_section("How many seeds", "seeds")}
{figure_section("NTK velocity", "ntk_velocity")}
{figure_section("Linear mode connectivity", "lmc_barrier", found["lmc"].round(4).to_html(index=False))}
{section("Compute: where the time went", captions, "job_benchmarks", found["compute"].to_html(index=False))}
<h2>Every run</h2>
<p>Each number above traces to one MLflow run: open it with <code>make ui</code> and search its ID.</p>
{every_run(found).to_html(index=False)}
<h3>Score files and the scoring runs that made them</h3>
{found["score_runs"].to_html(index=False)}
</body></html>
"""
