"""The experiments' one interface (study/experiment.py): an experiment added to the list is read,
drawn, judged, listed among the runs and asked for by the report step, with nothing else edited."""

from types import SimpleNamespace

import pandas as pd
import pytest

from datadiet.study import claims, experiments, report
from datadiet.study.experiment import Experiment, Figure, first_regime
from datadiet.verdicts import Scale, not_measured


def toy_experiment(drawn):
    def read(study, inputs, results):
        run = {"dataset": "d", "arch": "a", "noise": 0.0, "method": "random", "keep": 0.5, "run": 0}
        measured = {"test_accuracy": 0.5, "final_train_accuracy": 1.0, "run_id": "r1", "file": inputs["toy_runs"][0]}
        runs = pd.DataFrame([{**run, **measured}])
        return {"toy_runs": runs, "toy_left_out": pd.DataFrame()}

    def judge(results, regime):
        scale = first_regime(regime, results["toy_runs"])  # said in the reason: the regime reaches the claims
        return [not_measured("toy claim", "toy", "", scale.label) | {"n": len(results["toy_runs"])}]

    return Experiment(
        "toy",
        inputs={"toy_runs": lambda study: [f"{study.first}/toy.json"]},
        read=read,
        figures=(
            Figure("toy_drawn", "Toy", "toy_runs", lambda results, path: drawn.append(path) or path.write_bytes(b"")),
            Figure("toy_empty", "Toy left out", "toy_left_out", lambda *_: pytest.fail("drawn"), not_run="toy: off"),
        ),
        claims=judge,
        runs=(("toy", "toy_runs"),),
    )


def test_an_experiment_in_the_list_is_read_drawn_judged_and_asked_for(monkeypatch, tmp_path):
    drawn = []
    toy = toy_experiment(drawn)
    monkeypatch.setattr(experiments, "EXPERIMENTS", (toy,))
    monkeypatch.setattr(experiments, "FIGURES", toy.figures)
    bench = tmp_path / "bench" / "d" / "a" / "toy_rule"
    bench.mkdir(parents=True)
    (bench / "job.tsv").write_text("s\tmax_rss\n2.5\t100\n")
    study = SimpleNamespace(name="toy", first="d", clean=0.0, arch_of=lambda dataset: "a")
    inputs = {name: targets(study) for name, targets in experiments.inputs().items()}
    assert inputs == {"toy_runs": ["d/toy.json"]}

    results = report.read_results(study, {**inputs, "benchmarks": str(tmp_path / "bench")})
    assert results["toy_runs"].file.tolist() == ["d/toy.json"] and results["compute"].rule.tolist() == ["toy_rule"]
    regime = Scale("keep-hard regime", "measured")
    results.update(curve=pd.DataFrame(), regimes={("d", "a"): regime})
    judged = claims.table(results)
    assert judged[["claim", "n", "reason", "family"]].to_dict("records") == [
        {"claim": "toy claim", "n": 1, "reason": "keep-hard regime", "family": ""}
    ]

    paths = report.draw(results, tmp_path)
    assert drawn == [tmp_path / "toy_drawn.png"] and (tmp_path / "toy_empty.png").stat().st_size > 1000
    assert report.every_run(results).experiment.tolist() == ["toy"]
    assert set(paths) == {"toy_drawn", "toy_empty"}


def test_the_report_step_takes_an_option_for_every_input_of_every_experiment():
    from datadiet.study.jobs import REPORT_INPUTS

    wanted = {name for experiment in experiments.EXPERIMENTS for name in experiment.inputs}
    assert {option.strip("-*").replace("-", "_") for option in REPORT_INPUTS.split()} == wanted


def test_every_figure_has_a_caption_and_a_table_a_read_makes():
    """Each figure's caption exists (the Snakemake report and the page show it) and names are unique."""
    from pathlib import Path

    captions = Path(__file__).resolve().parents[1] / "workflow" / "report"
    names = [figure.name for figure in experiments.FIGURES]
    assert len(names) == len(set(names)) and all((captions / f"{name}.rst").exists() for name in names)
