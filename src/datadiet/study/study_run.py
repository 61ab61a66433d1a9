"""The study as one run in MLflow: a run per study, written by the report once its figures and tables
exist, that holds the pruning curve as metrics, every figure and table, the claims, the report page
and the study's identity (its config and the code's commit), with the study's job runs nested under it.

A report made again replaces the study run: the new one takes over the job runs, then the earlier
ones are deleted (MLflow keeps a deleted run's files until `mlflow gc`).
"""

import time
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from ..runtime import stop, tracking
from . import figures, layout

STUDY_RUN_TAG = "datadiet.study_run"  # "true" on a study run: what tells it from the job runs
CURVE = "pruning_curve"  # the metrics' prefix (the run page charts each panel in a section of its own)
CLAIMS = "claims.csv"  # in the report's figures folder
ACCURACY = "accuracy.csv"
PANEL = ["dataset", "arch", "noise"]  # one curve per method in each


def curve_key(dataset, arch, noise, method):
    """The metric of one curve: pruning_curve/cifar10/resnet18/noise0.0/el2n_e1."""
    return f"{CURVE}/{dataset}/{arch}/noise{layout.number(noise)}/{method}"


def curve_metrics(accuracy):
    """The accuracy table (figures/accuracy.csv) as metrics: per dataset, architecture, noise and method,
    the mean final test accuracy (%) at step = percent of the training set pruned. Every method's
    curve starts at step 0 with the full-data runs of its panel, as in the figure."""
    # Per panel: a method run at one noise level only has no curve at the others.
    curves = pd.concat(figures.full_data_per_method(panel) for _, panel in accuracy.groupby(PANEL))
    now = int(time.time() * 1000)
    return [
        Metric(curve_key(row.dataset, row.arch, row.noise, row.method), row.mean, now, round(100 * (1 - row.keep)))
        for row in curves.itertuples()
    ]


def description(name, job_count):
    """What the run page says above its metrics (markdown): how to read the curve and what is where."""
    return "\n".join(
        [
            f"Study `{name}`: {job_count} job runs nested under this one.",
            "",
            f"- Metrics `{CURVE}/<dataset>/<arch>/noise<level>/<method>`: "
            "the pruning curve, mean final test accuracy (%) against step = percent of the training set "
            "pruned (step 0: the full-data runs).",
            f"- Artifacts: every figure and table in `{layout.FIGURES}/`, the claims as a table "
            f"(`claims.json`), the report page (`{layout.REPORT}`) and the study's config "
            f"(`{layout.STUDY_CONFIG}`).",
        ]
    )


def experiment_runs(client, experiment_id):
    """Every live run of the experiment, page by page (a paper study has thousands)."""
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def is_study_run(run):
    return run.data.tags.get(STUDY_RUN_TAG) == "true"


def job_runs(client, experiment_id):
    """The runs of the study's jobs: every run of its experiment but the study runs."""
    return [run for run in experiment_runs(client, experiment_id) if not is_study_run(run)]


def log_contents(client, run_id, identity, figures_dir, html):
    figures_dir = Path(figures_dir)
    params = [Param(k, v) for k, v in tracking.as_logged(identity).items()]
    client.log_batch(run_id, metrics=curve_metrics(pd.read_csv(figures_dir / ACCURACY)), params=params)
    client.log_dict(run_id, identity, layout.STUDY_CONFIG)
    client.log_artifacts(run_id, str(figures_dir), layout.FIGURES)
    client.log_table(run_id, pd.read_csv(figures_dir / CLAIMS), "claims.json")
    client.log_artifact(run_id, str(html))


def log_study(store, name, identity, figures_dir, html):
    """The study run of study `name` in the store and experiment of `store` (the --tracked file;
    MLFLOW_TRACKING_URI wins, as for the study's jobs), from the report's `figures_dir` and `html`
    page; the study's job runs become its children and earlier study runs are deleted. Returns its id."""
    client = MlflowClient(tracking.study_store(store["uri"]))
    experiment_id = client.get_experiment_by_name(store["experiment"]).experiment_id
    earlier, jobs = [], []
    for run in experiment_runs(client, experiment_id):
        (earlier if is_study_run(run) else jobs).append(run)
    tags = {
        STUDY_RUN_TAG: "true",
        "git_commit": tracking.git_commit(),
        "mlflow.note.content": description(name, len(jobs)),
    }
    run_id = client.create_run(experiment_id, tags=tags, run_name=f"study {name}").info.run_id
    try:
        log_contents(client, run_id, identity, figures_dir, html)
        for job in jobs:
            client.set_tag(job.info.run_id, MLFLOW_PARENT_RUN_ID, run_id)
    except BaseException as error:
        with stop.shielded():
            client.set_terminated(run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    # Only now, so that a report that fails half-way leaves the earlier study run in place.
    for old in earlier:
        client.delete_run(old.info.run_id)
    return run_id
