"""The study's report: read result files, draw the figures, write one self-contained HTML page."""

import base64
import html
from pathlib import Path

import pandas as pd

from ..recipe import run_seeds
from ..runtime import files
from . import claims, experiments, figures, names


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


def claims_html(table):
    """The claims table, after a sentence saying its family: which rows were adjusted together, how many,
    and the rate that holds."""
    families = sorted(set(table.family) - {""})
    said = families[0] if families else "no decisive rows: nothing was adjusted"
    family = (
        f'<p>One family: {html.escape(said)}. A verdict is "reproduced" where its claim\'s one-sided test, '
        'adjusted with the others, is at most 5% (likewise "not reproduced" for the other side), so the chance '
        'of any false "reproduced" in this table is at most 5%; each row keeps its raw p. "detectable" is '
        'the true effect an inconclusive row would have decided with 80% power; "scope" says whether the '
        "repeats varied the score (method) or retrained one subset (this subset).</p>"
    )
    return family + table.to_html(index=False, classes="prose", float_format="{:.3g}".format, na_rep="")


def image_tag(path):
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{encoded}" style="max-width:100%">'


def section(title, caption_dir, name, body):
    """A report section: heading, the figure's caption (the same text as the Snakemake report's), body."""
    caption = html.escape(" ".join((Path(caption_dir) / f"{name}.rst").read_text().split()))
    return f"<h2>{title}</h2>\n<p>{caption}</p>\n{body}\n"


def read_results(study, inputs):
    """Every result file the report reads, as the tables each experiment makes of them (experiment.py)."""
    main_dataset = study.first
    results = {"study": study, "clean": float(study.clean), "main": (main_dataset, study.arch_of(main_dataset))}
    for experiment in experiments.EXPERIMENTS:
        results.update(experiment.read(study, inputs, results))
    results["compute"] = job_benchmarks(inputs["benchmarks"])
    return results


def draw(results, out_dir):
    """Every figure, or for an experiment the study did not run, a figure saying so; {name: path}."""
    paths = {}
    for figure in experiments.FIGURES:
        paths[figure.name] = out_dir / f"{figure.name}.png"
        if results[figure.shows].empty:
            figures.not_run(paths[figure.name], figure.not_run)
        else:
            figure.draw(results, paths[figure.name])
    return paths


def build(study, store, captions, inputs, out_dir, html_path):
    """Read every result file, draw every figure, compute the claims table and write the page."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = read_results(study, inputs)
    results["claims"] = claims.table(results)
    paths = draw(results, out_dir)
    files.write_text(results["table"].to_csv(index=False), out_dir / "accuracy.csv")
    files.write_text(results["sweep_table"].to_csv(index=False), out_dir / "size_sweep.csv")
    files.write_text(results["claims"].to_csv(index=False), out_dir / "claims.csv")
    files.write_text(every_run(results).to_csv(index=False), out_dir / "runs.csv")
    files.write_text(results["compute"].to_csv(index=False), out_dir / "job_benchmarks.csv")
    files.write_text(page(study, store, captions, results, paths), html_path)


def every_run(results):
    """One row per training run of every experiment: its init seed, the scoring seeds its subset was chosen
    by (where the score file says them), its accuracies, what it trained in and its MLflow run."""
    runs = pd.concat(
        [
            results[table].assign(experiment=label)
            for experiment in experiments.EXPERIMENTS
            for label, table in experiment.runs
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


def figure_sections(captions, results, paths):
    """A section per figure, in the experiments' order, with the tables shown under it."""
    sections = []
    for figure in experiments.FIGURES:
        below = figure.below(results) if figure.below and not results[figure.shows].empty else ""
        sections.append(section(figure.title, captions, figure.name, image_tag(paths[figure.name]) + below))
    return "".join(sections)


def page(study, store, captions, results, paths):
    config = study.config
    datasets = ", ".join(f"{name} ({study.arch_of(name)})" for name in study.datasets)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>datadiet: {html.escape(study.name)}</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:88%}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
table.prose td,table.prose th{{text-align:left}}h2{{border-bottom:1px solid #ddd}}</style></head><body>
<h1>Deep Learning on a Data Diet: study <code>{html.escape(study.name)}</code></h1>
<p>Datasets {html.escape(datasets)}; {len(results["clean_scores"])} training examples in {study.first}; width
{config["model"]["width"]} ({config["model"]["init"]} init), {config["train"]["epochs"]} epochs-equivalent of steps
({config["train"]["budget"]} budget); scores averaged over {config["scores"]["seeds"]} seeds,
{config["pruning"]["repeats"]} retraining repeats per point, selection <code>{config["pruning"]["strategy"]}</code>,
label noise levels {config["noise"]["levels"]}. MLflow store: <code>{html.escape(store["uri"])}</code>, experiment
<code>{html.escape(store["experiment"])}</code>.</p>
{section("Claims", captions, "claims", claims_html(results["claims"]))}
{figure_sections(captions, results, paths)}
{section("Compute: where the time went", captions, "job_benchmarks", results["compute"].to_html(index=False))}
<h2>Every run</h2>
<p>Each number above traces to one MLflow run: open it with <code>make ui</code> and search its ID.</p>
{every_run(results).to_html(index=False)}
<h3>Score files and the scoring runs that made them</h3>
{results["score_runs"].to_html(index=False)}
</body></html>
"""
