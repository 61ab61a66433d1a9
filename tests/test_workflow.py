"""The whole DAG, end to end, on a few hundred real CIFAR-10 images (synthetic JPEGs without ../shared)."""

import hashlib
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from datadiet import selection, verdicts
from datadiet.recipe import run_seeds
from datadiet.runtime import hardware
from datadiet.study import config as study_config, study_run
from datadiet.study.estimate import planned_jobs, submitted, summarize
from datadiet.study.experiments import FIGURES as DRAWN, size_sweep
from studies import (
    CIFAR,
    ROOT,
    UNTRACKED,
    job_key,
    max_overlap,
    run_snakemake,
    study_overrides,
    synthetic_jpeg_tar,
    write_overrides,
)

FIGURES = [figure.name for figure in DRAWN]  # every figure of the report

# The rules whose jobs train, score or measure, one at least of each in every study.
EXPERIMENT_RULES = {"train_scoring", "lmc_parent", "score", "retrain", "retrain_window", "ntk_velocity", "lmc_child",
                    "lmc_barrier", "sweep_scoring"}  # fmt: skip
PAPER_PLAN = "5d27403ad1ce6d49cae313e2e0b3c595da4ca7e79a649463369ca81f01da424b"
OUTCOMES = {"reproduced", "not reproduced", "inconclusive", "underpowered", "not measured", "descriptive"}
REGIMES = ("below paper scale", "scale unknown", *size_sweep.REGIMES)
VERDICTS = OUTCOMES | {f"{v} ({regime})" for v in OUTCOMES for regime in REGIMES}


def test_report_has_every_figure_the_tables_the_claims_and_every_run_id(study):
    out, _ = study
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(FIGURES)
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").stat().st_size > 5_000
    for heading in (
        "Claims",
        "Pruning curve",
        "the size sweep",
        "How early",
        "Sliding window",
        "Label noise",
        "Architecture transfer",
        "Rank correlation",
        "How many seeds",
        "NTK velocity",
        "Linear mode connectivity",
        "Every run",
        "Kirsch 2023",
    ):
        assert f"<h2>{heading}" in page or heading in page, heading
    accuracy = pd.read_csv(out / "figures" / "accuracy.csv")
    clean = accuracy[accuracy.noise == 0.0]
    # The pruning curve's table; the how-early runs (EL2N@0) are in their own figure.
    assert set(clean.method) == {
        "full",
        "random",
        "el2n_e1",
        "grand_e0",
        "grand_e1",
        "forgetting",
        "input_norm",
        "aum",
        "ccs-el2n_e1",
    }
    assert set(accuracy[accuracy.noise == 0.2].method) == {"full", "random", "el2n_e1"}
    assert (accuracy["count"] == 2).all() and accuracy["mean"].between(0, 100).all()
    for result in out.glob("cifar10*/*/retrain/*/*/*/*/result.json"):
        assert yaml.safe_load(result.read_text())["run_id"] in page
    # Where the compute went: one row per benchmarked rule, a job per benchmark file.
    compute = pd.read_csv(out / "figures" / "job_benchmarks.csv").set_index("rule")
    benchmarked = sorted(p.relative_to(out / "benchmarks").parts[2] for p in (out / "benchmarks").rglob("*.tsv"))
    assert compute["jobs"].to_dict() == {rule: benchmarked.count(rule) for rule in set(benchmarked)}
    assert {"train_scoring", "score", "retrain", "retrain_window", "lmc_child"} <= set(compute.index)
    assert (compute["total_s"] > 0).all() and "Compute: where the time went" in page


def test_claims_table_has_a_computed_verdict_for_every_claim(study):
    out, _ = study
    claims = pd.read_csv(out / "figures" / "claims.csv")
    assert set(claims.verdict) <= VERDICTS
    # In the report its columns of words read left-aligned, unlike the tables of numbers.
    page = (out / "report.html").read_text()
    assert '<table border="1" class="dataframe prose">' in page
    assert "One family: the tiny study&#x27;s claims table: " in page  # its size and the rate it holds, said
    assert claims.ours.notna().all() and claims.theirs.notna().all()
    assert list(claims.columns) == verdicts.COLUMNS
    # One family: the rows with a test (the correlations: 2 repeats decide no paired row), and only they.
    decisive = claims[claims.family.notna()]
    assert len(decisive) and (decisive.family == f"the tiny study's claims table: {len(decisive)} decisive rows, Holm "
                              "(family-wise rate 5%)").all() and (decisive.p_adjusted >= decisive.p).all()  # fmt: skip
    for claim, rows in {
        "beats random at moderate pruning": 1,
        "GraNd at init does not beat input norm": 1,
        "worse than random under 20% label noise": 1,
        "sliding-window optimum excludes the hardest": 1,
        "more so under 20% label noise": 1,
        "scores transfer across architectures": 2,  # each architecture on the other's scores
        "rank alike": 1,
        "NTK velocity rises with EL2N": 1,  # descriptive: one run's blocks
        "linearly connected later": 1,
        "CCS(EL2N@1) beats random": 1,
        "50% of the data can go with no loss": 1,
        "EL2N from early training beats GraNd at init": 1,
    }.items():
        assert claims.claim.str.contains(claim, regex=False).sum() == rows, claim
    assert (claims.dataset == "cifar10").all()
    # Two repeats call nothing: the paired comparisons say so, with their estimate.
    paired = claims[claims.claim.str.contains("beats random at moderate|no loss|GraNd at init does not")]
    assert (paired.verdict.str.startswith("underpowered") & (paired.n == 2) & paired.estimate.notna()).all()
    # A claim the tiny study cannot settle says why instead of passing or failing it.
    assert (claims[claims.verdict != "reproduced"].reason.fillna("") != "").all()


def test_every_experiment_wrote_its_results(study):
    out, _ = study
    runs = out / "cifar10"
    velocity = pd.read_csv(out / "cifar10" / "resnet18" / "ntk" / "noise0.0" / "velocity_e1.csv")
    assert len(velocity) == 4 and velocity.velocity.between(0, 1).all() and (velocity.velocity > 0).all()
    barrier = pd.read_csv(runs / "resnet18" / "lmc" / "noise0.0" / "barrier.csv")
    assert set(barrier.spawn_epoch) == {0, 2} and set(barrier.set) == {"high", "low", "random"}
    assert (barrier[["error_a", "error_b"]] >= 0).all().all()
    window_results = list(runs.glob("resnet18/window/*/el2n_e1/*/*/rep0/result.json"))
    assert len(window_results) == 2 * 2 * 3  # noise levels x kept fractions x shares left out above the window
    subsets = {json.loads(Path(p.parent / "subset.json").read_text())["selection"]["left_out"] for p in window_results}
    assert subsets == {0.0, 0.02, 0.5}
    # Transfer: each architecture trained on the other's scores, which came from the other's runs.
    for arch, other in (("resnet18", "resnet50"), ("resnet50", "resnet18")):
        subset = json.loads(
            (
                runs / arch / "retrain" / "noise0.0" / f"el2n_e1-from-{other}" / "keep0.5" / "rep0" / "subset.json"
            ).read_text()
        )
        made_by = json.loads((runs / other / "scores" / "noise0.0" / "el2n_e1" / "mean.json").read_text())
        assert subset["score_runs"] == made_by["runs"]


def test_size_sweep_measures_gains_intervals_and_the_crossover_on_nested_subsets(study):
    out, _ = study
    table = pd.read_csv(out / "figures" / "size_sweep.csv")
    assert list(table.columns) == size_sweep.COLUMNS
    assert {"n", "keep", "method", "gain", "ci_low", "ci_high", "full_accuracy"} <= set(table.columns)
    assert set(table.n) == {120, 300} and set(table.keep) == {0.5}
    assert set(table.method) == {"el2n_e1", "easy-el2n_e1", "full"} and (table.repeats == 2).all()
    assert ((table.ci_low <= table.gain) & (table.gain <= table.ci_high)).all()
    assert table.full_accuracy.between(0, 100).all() and table.full_train_accuracy.between(0, 100).all()
    # The gains are the runs': keep_max - random at n=120, paired by repeat, in points.
    runs = {
        (method, rep): json.loads(
            (
                out
                / "cifar10_n120"
                / "resnet18"
                / "retrain"
                / "noise0.0"
                / method
                / "keep0.5"
                / f"rep{rep}"
                / "result.json"
            ).read_text()
        )["test_accuracy"]
        for method in ("el2n_e1", "random")
        for rep in (0, 1)
    }
    gain = table[(table.n == 120) & (table.method == "el2n_e1")].gain.iloc[0]
    assert gain == pytest.approx(50 * sum(runs["el2n_e1", r] - runs["random", r] for r in (0, 1)))
    page = (out / "report.html").read_text()
    assert "Crossover N*" in page and (out / "figures" / "size_sweep.png").stat().st_size > 5_000
    claims = pd.read_csv(out / "figures" / "claims.csv")
    for claim in ("keep_max - random rises with N", "keep_min beats random where data is scarce (EL2N@1, N=120"):
        row = claims[claims.claim.str.startswith(claim)]
        assert len(row) == 1 and row.verdict.iloc[0] == "underpowered", claim  # 2 repeats
    # The sizes are nested, class-balanced subsets; the study's own size is the study's dataset.
    from datadiet.runtime import files

    small, whole = (files.load_tensors(out / d / "data" / "dataset.pt") for d in ("cifar10_n120", "cifar10"))
    assert set(small["train_source_index"].tolist()) < set(whole["train_source_index"].tolist())
    assert small["train_labels"].bincount().tolist() == [12] * 10 and len(whole["train_labels"]) == 300
    assert not (out / "cifar10_n300").exists()
    # Its scoring runs stop at the score's checkpoint; every training run says how well it fit.
    scoring = json.loads(
        (out / "cifar10_n120" / "resnet18" / "scoring" / "noise0.0" / "seed1" / "result.json").read_text()
    )
    assert sorted(p.name for p in (out / "cifar10_n120" / "resnet18" / "scoring" / "noise0.0" / "seed1").iterdir()) == [
        "ckpt_e1.pt",
        "result.json",
    ]
    assert 0 <= scoring["final_train_accuracy"] <= 1
    for result in out.glob("cifar10*/*/retrain/*/*/*/*/result.json"):
        assert 0 <= json.loads(result.read_text())["final_train_accuracy"] <= 1


def test_a_study_that_leaves_experiments_out_reports_them_not_run(study, tmp_path):
    """The laptop study leaves out how early, the window, transfer, LMC and label noise (a study may leave
    out NTK and the size sweep too): the report of such a study (here the tiny study's own results,
    re-reported with them all switched off) says so in each figure and in a "not measured" claim row
    each, and judges what it ran."""
    from datadiet.runtime import files
    from datadiet.study import report
    from datadiet.study.experiments import pruning, scores

    out, _ = study
    config = study_config.load(ROOT / "config" / "tiny.yaml").config
    config.update(results_dir=str(out.parent), noise={**config["noise"], "levels": [0.0]})
    for name in ("how_early", "window", "transfer", "lmc", "ntk", "size_sweep"):
        config["experiments"][name]["activate"] = False
    left_out = study_config.Study(config)
    inputs = dict.fromkeys(("how_early", "window", "transfer", "ntk", "lmc", "sweep"), [])
    inputs.update(curve=pruning.curve_targets(left_out), scores=scores.targets(left_out))
    inputs.update(labels=scores.labels(left_out), benchmarks=str(out / "benchmarks"))
    store = files.read_json(out / "mlflow" / "store.json")
    report.build(left_out, store, ROOT / "workflow" / "report", inputs, tmp_path, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(FIGURES)
    claims = pd.read_csv(tmp_path / "claims.csv").set_index("claim")
    not_run = claims[claims.verdict == "not measured"].reason.to_dict()
    assert not_run == {
        "GraNd at init is worse than random under label noise": "noise.levels has no level above 0",
        "EL2N from early training beats GraNd at init": "experiments.how_early is not run",
        "sliding-window optimum excludes the hardest": "experiments.window is not run",
        "scores transfer across architectures": "experiments.transfer has no runs",
        "corrupted labels rank hardest": "noise.levels has no level above 0",
        "NTK velocity rises with EL2N": "experiments.ntk is not run",
        "high-EL2N sets become linearly connected later": "experiments.lmc is not run",
        "keep_max - random rises with N": "experiments.size_sweep is not run",
        "keep_min beats random where data is scarce": "experiments.size_sweep is not run",
    }
    judged = claims.loc["EL2N@1 beats random at moderate pruning (50% kept)"]
    assert judged.verdict == "underpowered (below paper scale)" and judged.n == 2  # no sweep: the threshold
    assert pd.read_csv(tmp_path / "size_sweep.csv").empty


def test_the_proxy_preset_runs_end_to_end_at_tiny_scale(tmp_path):
    """config/proxy.yaml (the airbench-class network and its recipe), cut to a slice and a tiny width:
    the reproduction's grid of methods trains, scores and reports on the CPU, table C beside it."""
    cut = {"train_per_class": 20, "test_per_class": 10}
    if not CIFAR.exists():
        cut["path"] = str(synthetic_jpeg_tar(tmp_path / "synthetic.tar.gz"))
    overrides = write_overrides(
        tmp_path,
        results_dir=str(tmp_path / "results"),
        device="cpu",
        threads=1,
        datasets={"cifar10": cut},
        model={"width": 4},
        train={"epochs": 2, "batch_size": 32, "compile": False},
        scores={"seeds": 2, "grand_chunk_size": 50},
        pruning={"kept": [1.0, 0.5], "repeats": 1},
    )
    run_snakemake(overrides, preset="config/proxy.yaml")
    out = tmp_path / "results" / "proxy"
    accuracy = pd.read_csv(out / "figures" / "accuracy.csv")
    assert set(accuracy.method) == {"full", "random", "el2n_e1", "grand_e0", "grand_e1", "input_norm"}
    result = json.loads(next(out.glob("cifar10/airbench/retrain/**/result.json")).read_text())
    assert result["arch"] == "airbench" and result["train_size"] in (100, 200)
    run = MlflowClient(f"sqlite:///{out / 'mlflow.db'}").get_run(result["run_id"])
    assert run.data.params["train.schedule"] == "one_cycle" and run.data.params["train.lookahead"] == "True"
    assert (run.data.params["train.flip"], run.data.params["train.tta"]) == ("alternate", "translate")  # airbench94's
    page = (out / "report.html").read_text()
    assert "Kirsch 2023, hlb-CIFAR10 proxy" in page and "not run" in page


def test_moderate_selection_and_the_entropy_score_prune_in_a_study(tmp_path):
    """Two kinds added through datadiet.registry alone: moderate-<score> keeps the half of the examples
    closest to the median EL2N, entropy_e1 the half of highest entropy; both train and report."""
    cut = {"train_per_class": 20, "test_per_class": 10}
    if not CIFAR.exists():
        cut["path"] = str(synthetic_jpeg_tar(tmp_path / "synthetic.tar.gz"))
    off = {"activate": False}
    overrides = write_overrides(
        tmp_path,
        results_dir=str(tmp_path / "results"),
        datasets={"cifar10": cut},
        noise={"levels": [0.0]},
        scores={"seeds": 1, "entropy_epochs": [1]},
        pruning={"kept": [1.0, 0.5], "repeats": 1, "methods": ["random", "moderate-el2n_e1", "entropy_e1"]},
        experiments={name: off for name in ("how_early", "window", "transfer", "ntk", "lmc", "size_sweep")},
    )
    run_snakemake(overrides)
    out = tmp_path / "results" / "tiny"
    accuracy = pd.read_csv(out / "figures" / "accuracy.csv")
    assert set(accuracy.method) == {"full", "random", "moderate-el2n_e1", "entropy_e1"}
    scores = out / "cifar10" / "resnet18" / "scores" / "noise0.0"
    for method, score, kind in (("moderate-el2n_e1", "el2n_e1", "moderate"), ("entropy_e1", "entropy_e1", "keep_max")):
        subset = json.loads(next(out.glob(f"cifar10/resnet18/retrain/**/{method}/**/subset.json")).read_text())
        mean = torch.tensor(pd.read_csv(scores / score / "mean.csv")["mean"].to_numpy())
        expected = getattr(selection, kind)(mean, 0.5, run_seeds(0)["subset"])
        assert subset["selection"] == {"kind": kind} and subset["indices"] == expected.tolist()


def test_score_files_cover_every_example_per_seed_and_as_mean(study):
    out, _ = study
    scores = out / "cifar10" / "resnet18" / "scores" / "noise0.0"
    for score in ("grand_e0", "grand_e1", "el2n_e0", "el2n_e1", "forgetting", "aum"):
        mean = pd.read_csv(scores / score / "mean.csv")
        assert list(mean["index"]) == list(range(300))
        assert list(mean.columns) == ["index", "label", "mean", "seed0", "seed1", "seed2"]
        assert mean["mean"].to_numpy() == pytest.approx(mean[["seed0", "seed1", "seed2"]].mean(axis=1).to_numpy())
        for seed in (0, 1, 2):
            assert len(pd.read_csv(scores / score / f"seed{seed}.csv")) == 300
    norms = pd.read_csv(scores / "input_norm" / "mean.csv")
    assert len(norms) == 300 and (norms["mean"] > 0).all()
    assert (pd.read_csv(scores / "grand_e0" / "mean.csv")["mean"] > 0).all()


def test_every_job_is_one_finished_mlflow_run_with_params_and_provenance(study):
    out, overrides = study
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = study_run.job_runs(client, experiment.experiment_id)
    by_rule = pd.Series([r.data.tags["rule"] for r in runs]).value_counts().to_dict()
    # Every run the DAG's jobs that train, score or measure make (Snakemake's own job list; a job that
    # makes several runs, one after another, is listed once a run).
    planned = (
        pd.Series(
            [
                job.rule
                for job in planned_jobs(ROOT / "config" / "tiny.yaml", [str(overrides)])
                if job.rule not in UNTRACKED
            ]
        )
        .value_counts()
        .to_dict()
    )
    assert by_rule == planned
    assert EXPERIMENT_RULES <= set(by_rule)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert max_overlap(runs) >= 8  # eight jobs logged to the one SQLite store at once
    assert len({job_key(r) for r in runs}) == len(runs)  # no job logged twice
    ids = {r.info.run_id for r in runs}
    for r in runs:
        assert r.data.tags["git_commit"]
        if r.data.tags["rule"] in ("train_scoring", "retrain", "lmc_child"):
            assert r.data.params["train.lr"] == "0.1" and r.data.params["model.width"] == "4"
            assert {"final_test_accuracy", "final_train_accuracy"} <= set(r.data.metrics)
        consumed = [c for c in r.data.tags["consumed_runs"].split(",") if c]
        assert set(consumed) <= ids
        if r.data.tags["rule"] == "retrain" and r.data.tags["wildcard.method"] not in ("full", "random"):
            assert consumed, r.info.run_name  # a retraining run names the scoring runs that chose its subset
        if r.data.tags["rule"] in ("score", "lmc_child"):
            assert len(consumed) == 1  # the training run whose checkpoint it scored, or the parent
    assert any(r.info.run_name == "retrain el2n@1 keep=0.5 rep=1 noise=0.0 cifar10 resnet18" for r in runs)


def test_second_run_has_nothing_to_do_and_snakemake_report_has_every_figure_with_its_caption(study):
    out, overrides = study
    assert "Nothing to be done" in run_snakemake(overrides, "-n").stdout
    run_snakemake(overrides, "--report", str(out / "snakemake-report.html"))
    page = (out / "snakemake-report.html").read_text()
    for name in [*FIGURES, "accuracy", "claims", "job_benchmarks"]:
        caption = " ".join((ROOT / "workflow" / "report" / f"{name}.rst").read_text().split())
        assert caption[:60].replace("``", "") in " ".join(page.split()).replace("<code>", "").replace("</code>", ""), (
            name
        )
        assert f"{name}.png" in page or f"{name}.csv" in page, name


def test_lint_reports_nothing(tmp_path):
    # Snakemake's linter also asks every rule for log: and conda: (our environment.yml).
    proc = run_snakemake(write_overrides(tmp_path, results_dir=str(tmp_path / "results")), "--lint")
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_a_bad_config_stops_snakemake_with_one_clear_error_naming_it(tmp_path):
    # Every check is unit-tested in test_study.py; this shows the workflow runs them before any job.
    override = write_overrides(tmp_path, results_dir=str(tmp_path), pruning={"methods": ["el2n_e7"]})
    proc = run_snakemake(override, "-n", check=False)
    assert proc.returncode != 0
    assert "'el2n_e7' needs a score" in proc.stdout + proc.stderr


def test_paper_preset_dry_run_plans_every_experiment_and_estimate_prices_it():
    config = study_config.load(ROOT / "config" / "paper.yaml").config
    assert config["datasets"]["cifar10"]["train_per_class"] is None  # nothing of the laptop subset
    jobs = planned_jobs(ROOT / "config" / "paper.yaml")
    rules = {job.rule for job in jobs}
    assert EXPERIMENT_RULES | {"report"} <= rules
    # The three datasets, and the size sweep's subsets of CIFAR-10 (all 50,000: CIFAR-10 itself).
    assert {job.wildcards["dataset"] for job in jobs if "dataset" in job.wildcards} == {
        "cifar10",
        "cifar100",
        "cinic10",
        "cifar10_n5000",
        "cifar10_n10000",
        "cifar10_n25000",
    }
    retrains = [job.wildcards for job in jobs if job.rule in ("retrain", "sweep_retrain", "sweep_full")]
    assert {w["arch"] for w in retrains} == {"resnet18", "resnet50"}
    assert {float(w["keep"]) for w in retrains} >= {0.1, 0.5, 0.9, 1.0}
    assert {w["noise"] for w in retrains} == {"0.0", "0.1", "0.2"}
    methods = set(config["pruning"]["methods"])
    assert {w["method"] for w in retrains if w["noise"] == "0.2" and w["dataset"] == "cifar100"} >= methods
    assert {int(job.wildcards["seed"]) for job in jobs if job.rule == "train_scoring"} == set(range(10))
    assert {int(w["rep"]) for w in retrains} == set(range(8))
    # Exactly the runs recorded (after issue 18: the size sweep, keep_min at the main size; issue 20: a
    # download job per torchvision dataset, a job per scoring run for all its scores, one per retraining
    # point for its repeats, the size sweep's full-data points a rule of their own, a subset's score made by
    # its scoring job; issue 31: 8 repeats, not 4): a digest.
    listed = sorted(
        f"{job.rule} " + ", ".join(f"{k}={v}" for k, v in sorted(job.wildcards.items()))
        for job in jobs
        if job.wildcards
    )
    assert len(listed) == 7966 and hashlib.sha256("\n".join(listed).encode()).hexdigest() == PAPER_PLAN
    # Jobs worth scheduling: about 1,100 Slurm jobs for its 7,966 runs (4,717 jobs before issue 20); a
    # subset's score (seconds of work) is made by the job that trained its scoring run.
    assert len(submitted(jobs)) == 1108
    kinds = defaultdict(set)
    for job in jobs:
        kinds[job.job].add(job.kind)
    subsets = study_config.Study(config).subsets
    assert {frozenset(kinds[j.job]) for j in jobs if j.kind == "score" and j.wildcards["dataset"] in subsets} == {
        frozenset({"scoring", "score"})
    }
    assert {rule for rule, _ in submitted(jobs)}.isdisjoint({"download", "aggregate_scores", "input_norm"})
    table = summarize(jobs, config)
    assert set(table) >= {
        "scores",
        "pruning curve",
        "how early",
        "label noise",
        "sliding window",
        "architecture transfer",
        "NTK velocity",
        "size sweep",
        "linear mode connectivity",
    }
    assert all(hours > 0 for name, (_, _, hours) in table.items() if name != "set-up and report")
    # Same order of magnitude as the paper's ~15,000 V100 GPU-hours.
    assert 3_000 < sum(hours for _, _, hours in table.values()) < 60_000


def test_the_headline_preset_plans_each_repeat_by_its_own_short_scoring_runs_and_prices_them():
    config = study_config.load(ROOT / "config" / "headline.yaml").config
    jobs = planned_jobs(ROOT / "config" / "headline.yaml")
    rules = [job.rule for job in jobs if job.kind in ("scoring", "repeat_mean", "retrain")]
    assert sorted(set(rules)) == ["aggregate_repeat_scores", "retrain", "short_scoring"]
    assert rules.count("short_scoring") == 6 and rules.count("aggregate_repeat_scores") == 3
    # Hours at 190 img/s: 6 scoring runs of one epoch (and their EL2N), then as many epochs of each subset
    # as of full data (budget: epochs): 3 x 5 epochs of 49,152 images and 6 x 5 of 24,576.
    table = summarize(jobs, config)
    assert table["pruning curve"][2] == pytest.approx((3 * 5 * 49_152 + 6 * 5 * 24_576) / 190 / 3600)
    assert table["scores"][2] == pytest.approx((6 * 49_152 + 6 * 50_000 / 3) / 190 / 3600)


def test_two_configs_never_share_a_results_folder(tmp_path):
    first = write_overrides(tmp_path, results_dir=str(tmp_path))
    run_snakemake(first, "--until", "init_tracking")  # a real run records the config it ran with
    assert json.loads((tmp_path / "tiny" / "study_config.json").read_text())["study"] == "tiny"
    other = write_overrides(tmp_path, results_dir=str(tmp_path), pruning={"kept": [1.0, 0.25]})
    proc = run_snakemake(other, "-n", check=False)
    assert proc.returncode != 0
    assert "made with another config (it differs in pruning.kept)" in proc.stdout + proc.stderr
    renamed = write_overrides(tmp_path, results_dir=str(tmp_path), study="tiny-quarter", pruning={"kept": [1.0, 0.25]})
    assert run_snakemake(renamed, "-n").returncode == 0
    assert run_snakemake(first, "-n").returncode == 0


def test_a_moved_checkout_or_a_tracking_server_reruns_no_job(tmp_path):
    """Where a study runs is no part of its jobs: a checkout moved to another folder, or its jobs pointed
    at an MLflow server, plans no job for results already there."""
    checkout = tmp_path / "here" / "datadiet"
    checkout.mkdir(parents=True)
    for name in ("Snakefile", "config.yaml", "environment.yml", "config", "workflow", "profiles"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, checkout / name)
    (tmp_path / "here" / "shared").symlink_to(ROOT.parent / "shared")
    overrides = study_overrides(tmp_path, "results")  # inside the checkout, as config.yaml has it
    runs = "results/tiny/cifar10/resnet18"
    targets = [
        f"{runs}/retrain/noise0.0/random/keep0.5/rep0/result.json",
        f"{runs}/scores/noise0.0/input_norm/mean.csv",
    ]
    run_snakemake(overrides, targets=targets, cwd=checkout)
    moved = tmp_path / "there"
    (tmp_path / "here").rename(moved)
    for env in ({}, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}):
        proc = run_snakemake(overrides, "-n", targets=targets, cwd=moved / "datadiet", env=env)
        assert "Nothing to be done" in proc.stdout + proc.stderr, (env, proc.stdout[-3000:])


def cpu_kind():
    """The CPU's vendor and widest matrix instructions: they choose torch's kernels, so a study's floats
    differ from one kind of CPU to another (never from one run to the next on the same CPU)."""
    flags, vendor = hardware.cpu_flags()
    widest = next((isa for isa in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if isa in flags), "other")
    return f"{vendor}-{widest}"


@pytest.mark.skipif(not CIFAR.exists(), reason="the recorded results are of real CIFAR-10 images (../shared/data)")
def test_the_tiny_study_computes_exactly_the_recorded_results(study):
    """Refactoring changes no result: the tables and every mean score file of the tiny study, byte for byte,
    as tests/tiny_study.<cpu kind>.sha256 records them (sha256sum's format) for each kind of CPU it ran on;
    a CPU kind not recorded has nothing to compare with (record it: `sha256sum <files>` in the study's
    results folder, on that CPU). Remade when issue 18 changed results on purpose (the size sweep, the regime
    labels of the verdicts, the train-accuracy column) and issue 31 (claims.csv: its family, scope and
    p-values), the score files of issue 17 unchanged; claims.csv is checked on the kinds recorded since."""
    out, _ = study
    record = ROOT / "tests" / f"tiny_study.{cpu_kind()}.sha256"
    if not record.exists():
        pytest.skip(f"no record of the tiny study on a {cpu_kind()} CPU (each kind computes other floats)")
    recorded = [line.split(maxsplit=1) for line in record.read_text().splitlines()]
    changed = [name for digest, name in recorded if hashlib.sha256((out / name).read_bytes()).hexdigest() != digest]
    assert changed == [], f"{record.name} on a {cpu_kind()} CPU"  # every file that changed, not only the first
