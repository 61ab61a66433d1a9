"""The MLflow UI as a person uses it: `mlflow ui` on the tiny study's store, read in headless Chromium:
the study run with its pruning curve and figures, the job runs nested under it, a job run's page.

Screenshots land in results/test-artifacts/mlflow-ui/ (each path is printed).
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from playwright.sync_api import expect, sync_playwright

from datadiet.study import study_run
from paths import ROOT
from servers import free_port, wait_for_server

ARTIFACTS = ROOT / "results" / "test-artifacts" / "mlflow-ui"
CHROMIUM = shutil.which("chromium")
# Without the background-networking flags Chromium keeps trying Google's hosts, and this machine's
# closed network refuses its connections many at a time.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 120_000  # generous: the UI renders slowly on a busy 2-core machine
ROW_HEIGHT = 32  # pixels, of the runs table
PAGE_SIZE = 100  # runs the table fetches at a time; "Load more" fetches the next ones

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (`make system-deps` installs it when run as root)"
)
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def store(study):
    out, _ = study
    return f"sqlite:///{out / 'mlflow.db'}"


@pytest.fixture(scope="module")
def ui(store, tmp_path_factory):
    """`mlflow ui` on loopback against the study's store: its address. Stopped with its children."""
    log = tmp_path_factory.mktemp("mlflow-ui") / "mlflow-ui.log"
    port = free_port()
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "ui",
                "--backend-store-uri",
                store,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_server(f"http://127.0.0.1:{port}/health", 300, server=server, log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):  # the whole group may have exited already
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        # launch() gives every run a fresh, temporary profile (user data dir).
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 2200, "height": 1400})
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def client(store):
    return MlflowClient(store)


@pytest.fixture(scope="module")
def experiment_id(client):
    return client.get_experiment_by_name("tiny").experiment_id


@pytest.fixture(scope="module")
def runs(client, experiment_id):
    """The job runs."""
    return study_run.job_runs(client, experiment_id)


@pytest.fixture(scope="module")
def summary(client, experiment_id):
    """The study run (the report's)."""
    (run,) = [r for r in study_run.experiment_runs(client, experiment_id) if study_run.is_study_run(r)]
    return run


def screenshot(page, name, capsys):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path, full_page=True)
    with capsys.disabled():
        print(f"\nscreenshot: {path}")


def number_text(value):
    """A metric as the UI writes it (JavaScript's shortest form): 0.075, and 1 for 1.0."""
    return str(int(value)) if value.is_integer() else repr(value)


def show_column(page, name):
    """Tick one metric or parameter in the runs table's column picker."""
    page.get_by_role("button", name="Columns", exact=True).click()
    page.get_by_placeholder("Search columns").fill(name)
    # The picker highlights the match in pieces, so the node is found by its whole text.
    page.get_by_test_id("column-selector-tree").locator(".du-bois-light-tree-treenode").filter(
        has_text=re.compile(f"^{re.escape(name)}$")
    ).click()
    page.keyboard.press("Escape")
    expect(page.locator(f'.ag-header-cell[col-id$="`{name}`"]')).to_be_visible()


def load_every_run(page, count):
    """Click "Load more" until the runs table holds all `count` runs."""
    for loaded in range(PAGE_SIZE, count, PAGE_SIZE):
        expect(page.get_by_text(f"{loaded} matching runs", exact=True)).to_be_visible()
        page.get_by_role("button", name="Load more").click()
    expect(page.get_by_text(f"{count} matching runs", exact=True)).to_be_visible()


def expand(page, run):
    """Show the runs nested under `run` in the runs table."""
    row = page.locator(f'[row-id="{run.info.run_id}"] [col-id="attributes.`Run Name`"]')
    row.get_by_role("button").click()


def table_row(page, key):
    """The row of a run page's metrics or parameters table whose first cell is exactly `key`."""
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=key, exact=True))


def test_every_run_is_listed_nested_under_the_study_with_its_final_accuracy_and_kept_fraction(
    ui, runs, summary, page, capsys
):
    experiment_id = summary.info.experiment_id
    # Tall enough for every row: the table only draws the rows on screen.
    page.set_viewport_size({"width": 2200, "height": 600 + ROW_HEIGHT * (len(runs) + 1)})
    page.goto(f"{ui}/#/experiments/{experiment_id}")
    page.get_by_text("Model training", exact=True).click()  # the UI opens an experiment on its GenAI pages
    load_every_run(page, len(runs) + 1)
    # The job runs are the study run's children: folded under it until it is expanded.
    job = page.locator(f'[row-id="{runs[0].info.run_id}"]')
    expect(job).to_have_count(0)
    expand(page, summary)
    expect(job.get_by_role("link", name=runs[0].info.run_name, exact=True)).to_be_visible()
    for column in ("final_test_accuracy", "keep"):
        show_column(page, column)
    screenshot(page, "experiment.png", capsys)
    for run in runs:
        row = page.locator(f'[row-id="{run.info.run_id}"]')
        expect(row.get_by_role("link", name=run.info.run_name, exact=True)).to_be_visible()
        if "final_test_accuracy" in run.data.metrics:
            expect(row.locator('[col-id="metrics.`final_test_accuracy`"]')).to_have_text(
                number_text(run.data.metrics["final_test_accuracy"])
            )
        if "keep" in run.data.params:
            expect(row.locator('[col-id="params.`keep`"]')).to_have_text(run.data.params["keep"])


def test_a_retraining_run_shows_params_and_metrics_and_links_to_its_scoring_runs(ui, runs, page, capsys):
    by_id = {run.info.run_id: run for run in runs}
    retrain = min(
        (r for r in runs if r.data.tags["rule"] == "retrain" and r.data.tags["wildcard.method"] == "el2n_e1"),
        key=lambda r: r.info.run_name,
    )
    experiment_id = retrain.info.experiment_id
    page.goto(f"{ui}/#/experiments/{experiment_id}/runs/{retrain.info.run_id}")
    expect(page.get_by_role("heading", name=retrain.info.run_name, exact=True)).to_be_visible()
    for key in ("keep", "method", "train.lr", "model.arch"):
        expect(table_row(page, key)).to_contain_text(retrain.data.params[key])
    for key in ("final_test_accuracy", "final_test_loss"):
        expect(table_row(page, key)).to_contain_text(number_text(retrain.data.metrics[key]))
    screenshot(page, "retrain-run.png", capsys)

    scores = [by_id[c] for c in retrain.data.tags["consumed_runs"].split(",")]
    assert {s.data.tags["rule"] for s in scores} == {"score"}
    for score in scores:
        expect(page.get_by_role("link", name=score.info.run_name, exact=True)).to_have_attribute(
            "href", f"#/experiments/{experiment_id}/runs/{score.info.run_id}"
        )
    score = scores[0]
    with page.context.expect_page() as opened:  # the description's links open a new tab
        page.get_by_role("link", name=score.info.run_name, exact=True).click()
    score_page = opened.value
    expect(score_page).to_have_url(re.compile(f"#/experiments/{experiment_id}/runs/{score.info.run_id}"))
    expect(score_page.get_by_role("heading", name=score.info.run_name, exact=True)).to_be_visible()
    # ...and on from the scoring run to the training run whose checkpoint it scored.
    trainer = by_id[score.data.tags["consumed_runs"]]
    expect(score_page.get_by_role("link", name=trainer.info.run_name, exact=True)).to_be_visible()
    screenshot(score_page, "score-run.png", capsys)


def test_the_study_run_shows_its_pruning_curve_figures_and_job_runs(ui, study, summary, runs, page, capsys):
    out, _ = study
    run_id, experiment_id = summary.info.run_id, summary.info.experiment_id
    page.goto(f"{ui}/#/experiments/{experiment_id}/runs/{run_id}")
    expect(page.get_by_role("heading", name="study tiny", exact=True)).to_be_visible()
    # The curve's last point, as the report's table has it: EL2N@1 at the smallest kept fraction.
    accuracy = pd.read_csv(out / "figures" / "accuracy.csv")
    el2n = accuracy[(accuracy.noise == 0.0) & (accuracy.method == "el2n_e1")].sort_values("keep").iloc[0]
    key = "pruning_curve/cifar10/resnet18/noise0.0/el2n_e1"
    expect(table_row(page, key)).to_contain_text(number_text(float(el2n["mean"])))
    # Its children are the job runs: the page links the newest first (ten, then "Load more").
    newest = max(runs, key=lambda r: r.info.start_time)
    expect(page.get_by_role("link", name=newest.info.run_name, exact=True)).to_have_attribute(
        "href", f"#/experiments/{experiment_id}/runs/{newest.info.run_id}"
    )
    screenshot(page, "study-run.png", capsys)

    # The curve: a section per panel (dataset, architecture, noise) with a chart per pruned method, over
    # the steps (the percent pruned).
    page.goto(f"{ui}/#/experiments/{experiment_id}/runs/{run_id}/model-metrics")
    methods = set(accuracy[accuracy.noise == 0.0].method) - {"full"}
    section = page.get_by_test_id("experiment-view-compare-runs-section-header").filter(
        has_text="pruning_curve/cifar10/resnet18/noise0.0"
    )
    expect(section).to_contain_text(f"({len(methods)})")
    for method in methods:
        expect(page.get_by_text(method, exact=True).first).to_be_visible()
    expect(page.get_by_text("Step", exact=True).first).to_be_visible()  # a chart drawn
    screenshot(page, "study-curve.png", capsys)

    page.goto(f"{ui}/#/experiments/{experiment_id}/runs/{run_id}/artifacts")
    for name in ("claims.json", "report.html", "study_config.json"):
        expect(page.get_by_text(name, exact=True)).to_be_visible()
    page.get_by_text("figures", exact=True).click()
    page.get_by_text("pruning_curve.png", exact=True).click()
    expect(page.get_by_text("figures/pruning_curve.png", exact=True)).to_be_visible()
    expect(page.locator('img[src^="blob:"]').first).to_be_visible()  # the figure, previewed
    screenshot(page, "study-figure.png", capsys)
