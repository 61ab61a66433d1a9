"""The study's report: read result files, draw the figures, write one self-contained HTML page."""
import base64
import html
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from . import figures, published, results


def collect_runs(result_paths):
    """One row per retraining run: method, kept fraction, repeat, noise, accuracy and its MLflow run."""
    rows = [results.read_json(path) for path in result_paths]
    return pd.DataFrame(rows)[["noise", "method", "keep", "run", "test_accuracy", "train_size", "steps", "run_id"]]


def collect_scores(score_paths):
    """Mean score per example for every score of the clean (lowest-noise) level, one column each,
    and the MLflow runs behind every score file."""
    tables, provenance = {}, []
    for path in score_paths:
        noise = float(Path(path).parent.parent.name.removeprefix("noise"))
        made_by = results.read_json(results.provenance_path(path))
        tables.setdefault(noise, {})[made_by["score"]] = results.read_scores(path)["mean"].to_numpy()
        provenance.append({"noise": noise, "score": figures.display_name(made_by["score"]),
                           "file": str(path), "runs": " ".join(made_by["runs"])})
    return pd.DataFrame(tables[min(tables)]), pd.DataFrame(provenance)


def spearman_matrix(scores):
    rho = spearmanr(scores.to_numpy()).statistic
    return pd.DataFrame(rho, index=scores.columns, columns=scores.columns)


def accuracy_table(runs):
    """Mean, std and count of final test accuracy (%) by noise, method and kept fraction."""
    return (runs.assign(accuracy=100 * runs.test_accuracy)
            .groupby(["noise", "method", "keep"]).accuracy.agg(["mean", "std", "count"]).round(2).reset_index())


def accuracy_pivot(table):
    """Methods as rows, kept fractions as columns (largest first); the full-data runs fill column 1.0."""
    table = figures.full_data_per_method(table)
    cells = table.assign(method=table.method.map(figures.display_name),
                         cell=table["mean"].map("{:.2f}".format) + " ± " + table["std"].fillna(0).map("{:.2f}".format))
    pivot = cells.pivot_table(index=["noise", "method"], columns="keep", values="cell", aggfunc="first")
    return pivot[sorted(pivot.columns, reverse=True)]


def published_table(source):
    table = pd.DataFrame(source["accuracy"], index=source["kept"]).T
    table.index = [figures.display_name(m) for m in table.index]
    table.columns.name = "kept"
    return table


def image_tag(path):
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{encoded}" style="max-width:100%">'


def build(spec, result_paths, score_paths, out_dir, html_path):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = collect_runs(result_paths)
    scores, score_runs = collect_scores(score_paths)
    correlations = spearman_matrix(scores)
    table = accuracy_table(runs)
    curve, heatmap = out_dir / "pruning_curve.png", out_dir / "spearman.png"
    figures.pruning_curve(runs, curve)
    figures.spearman_heatmap(correlations, heatmap)
    results.write_text(table.to_csv(index=False), out_dir / "accuracy.csv")

    published_rho = "".join(
        f"<li>{figures.display_name(a)} vs {figures.display_name(b)}: {rho}</li>"
        for (a, b), rho in published.REPRODUCTION_SPEARMAN.items())
    ours_rho = correlations.round(3).rename(index=figures.display_name, columns=figures.display_name)
    run_list = runs.sort_values(["noise", "method", "keep", "run"]).assign(
        method=lambda d: d.method.map(figures.display_name), test_accuracy=lambda d: (100 * d.test_accuracy).round(2))
    config = spec["config"]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>datadiet: {html.escape(spec['study'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:90%}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
h2{{border-bottom:1px solid #ddd}}</style></head><body>
<h1>Deep Learning on a Data Diet: study <code>{html.escape(spec['study'])}</code></h1>
<p>{config['data']['name']} ({len(scores)} training examples), {config['model']['arch']} width
{config['model']['width']}, {config['train']['epochs']} epochs-equivalent of steps ({config['train']['budget']}
budget), scores averaged over {config['scores']['seeds']} seeds, {config['pruning']['repeats']} retraining
repeats per point, selection <code>{config['pruning']['strategy']}</code>. MLflow store:
<code>{html.escape(spec['tracking']['uri'])}</code>, experiment <code>{html.escape(spec['tracking']['experiment'])}</code>.</p>

<h2>Pruning curve</h2>
{image_tag(curve)}
<p>The paper: pruning the lowest-EL2N half of CIFAR-10 (scores at epoch 20) loses no accuracy, while GraNd at
initialisation fails to beat random in the reproduction. A small study sits in the scarce-data regime
(Sorscher et al. 2022), where keeping the hardest examples may lose to random.</p>

<h2>Final test accuracy (%): ours</h2>
{accuracy_pivot(table).to_html()}
<h3>Published: {published.REPRODUCTION_RESNET18['source']}</h3>
{published_table(published.REPRODUCTION_RESNET18).to_html()}
<h3>Published: {published.REPRODUCTION_PROXY['source']}</h3>
{published_table(published.REPRODUCTION_PROXY).to_html()}

<h2>Rank correlation of scores</h2>
{image_tag(heatmap)}
{ours_rho.to_html()}
<p>Published (reproduction, CIFAR-10, ResNet18):</p><ul>{published_rho}</ul>

<h2>Every run</h2>
<p>Each number above traces to one MLflow run: open it with <code>make ui</code> and search its ID.</p>
{run_list.to_html(index=False)}
<h3>Score files and the scoring runs that made them</h3>
{score_runs.to_html(index=False)}
</body></html>
"""
    results.write_text(page, html_path)
