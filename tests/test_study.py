"""The study's vocabulary in Python, without Snakemake: names, the results layout and the config's
loading, checks and split between what a job is and where it runs."""

import json
import re
from types import SimpleNamespace

import pytest
import yaml

from datadiet import registry
from datadiet.study import config as study_config, layout, names, specs
from datadiet.study.experiments import pruning, window
from paths import ROOT

SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


# A name, as the paper writes it (figures, tables, claims) and as MLflow run names write it.
SHOWN = """
el2n_e20 EL2N@20 el2n@20
grand_e0 GraNd@0 grand@0
forgetting forgetting forgetting
aum AUM aum
input_norm input_norm input_norm
ccs-el2n_e2 CCS(EL2N@2) ccs-el2n@2
easy-el2n_e10 EL2N@10_easiest easy-el2n@10
el2n_e20-from-resnet50 EL2N@20_from_resnet50 el2n@20-from-resnet50
random random random
full full full
window-el2n_e10 window(EL2N@10) window-el2n@10
"""


@pytest.mark.parametrize("name, label, run_label", [line.split() for line in SHOWN.strip().splitlines()])
def test_a_method_reads_back_as_written_and_shows_as_the_paper_and_the_run_names_write_it(name, label, run_label):
    assert names.label(name) == label.replace("_", " ") and names.run_label(name) == run_label
    if not name.startswith("window-"):
        assert str(names.Method.parse(name)) == name


def test_a_method_knows_its_score_ccs_transfer_and_selection():
    method = names.Method.parse("ccs-grand_e3-from-resnet18")
    assert (method.score, method.kind, method.source_arch) == (names.Score("grand", 3), "ccs", "resnet18")
    assert method.selection({"ccs": {"beta": 0.1, "strata": 50}}) == {"kind": "ccs", "beta": 0.1, "strata": 50}
    assert names.Method.parse("el2n_e1", "keep_min").selection({}) == {"kind": "keep_min"}
    # easy-: the easiest kept, whatever the config's strategy says a plain score keeps.
    assert names.Method.parse("easy-el2n_e1", "keep_max").selection({}) == {"kind": "keep_min"}
    assert names.Method.parse("easy-el2n_e1", "keep_max").score == names.Score("el2n", 1)
    assert names.Method.parse("random").selection({}) == {"kind": "random"}
    assert names.run_label("ccs-el2n_e2") == "ccs-el2n@2"


@pytest.mark.parametrize(
    "bad",
    ["el2n", "grand_e", "keep-el2n_e1", "ccs-random", "el2n_e1-from-vgg", "EL2N_e1", "easy-random", "ccs-easy-aum"],
)
def test_a_misspelt_method_is_one_error_naming_it(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        names.Method.parse(bad)


def test_the_schema_accepts_exactly_the_config_methods_names_parses():
    # The config names methods without transfer (the transfer experiment makes those) and without full.
    pattern = SCHEMA["$defs"]["method"]["pattern"]
    for name in [
        "random",
        "el2n_e1",
        "ccs-el2n_e20",
        "grand_e0",
        "forgetting",
        "aum",
        "input_norm",
        "ccs-aum",
        "easy-el2n_e2",
        "moderate-el2n_e2",
        "entropy_e3",
        "moderate-entropy_e0",
    ]:
        assert re.fullmatch(pattern, name) and names.Method.parse(name)
    for name in ["full", "el2n_e1-from-resnet50", "el2n", "keep-el2n_e1", "entropy"]:
        assert not re.fullmatch(pattern, name)


def as_schema_writes_it(regex):
    return regex.replace("(?:", "(").replace(r"\d", "[0-9]")


def test_the_schemas_names_are_the_registrys():
    """Every kind of score and selection of datadiet.registry, and nothing else, in the schema."""
    assert SCHEMA["$defs"]["score"]["pattern"] == as_schema_writes_it(f"^({names.SCORE})$")
    method = as_schema_writes_it(f"^(random|({names.PREFIX})?({names.SCORE}))$")
    assert SCHEMA["$defs"]["method"]["pattern"] == method
    epochs = {key for key in SCHEMA["properties"]["scores"]["properties"] if key.endswith("_epochs")}
    assert epochs == {f"{kind}_epochs" for kind in registry.AT_CHECKPOINT}


def test_a_method_says_its_kind_and_the_selection_that_chooses_it():
    parsed = {name: names.Method.parse(name, "keep_max") for name in ("random", "el2n_e1", "easy-el2n_e1")}
    parsed["moderate"] = names.Method.parse("moderate-entropy_e2-from-resnet50")
    assert {name: (m.kind, m.selected_by, m.label) for name, m in parsed.items()} == {
        "random": ("random", "random", "random"),
        "el2n_e1": ("score", "keep_max", "EL2N@1"),
        "easy-el2n_e1": ("easy", "keep_min", "EL2N@1 easiest"),
        "moderate": ("moderate", "moderate", "moderate(entropy@2) from resnet50"),
    }
    assert str(parsed["moderate"]) == "moderate-entropy_e2-from-resnet50"
    ccs = names.Method.parse("ccs-aum").selection({"ccs": {"beta": 0.2, "strata": 5, "ignored": 1}})
    assert ccs == {"kind": "ccs", "beta": 0.2, "strata": 5}


def test_a_path_is_built_and_parsed_by_one_template():
    path = layout.Layout("results/tiny")(
        layout.RETRAIN, dataset="cifar10", arch="resnet18", noise=0, method="random", keep=0.5, rep=1
    )
    assert path == "results/tiny/cifar10/resnet18/retrain/noise0.0/random/keep0.5/rep1"
    assert layout.parse(layout.RETRAIN, path) == {
        "dataset": "cifar10",
        "arch": "resnet18",
        "noise": "0.0",
        "method": "random",
        "keep": "0.5",
        "rep": "1",
    }
    assert layout.fill(layout.MEAN_SCORES, score="aum") == "{dataset}/{arch}/scores/noise{noise}/aum/mean.csv"
    with pytest.raises(ValueError, match="is not a path of the form"):
        layout.parse(layout.NTK, path)


def test_window_runs_leave_out_each_share_that_fits_the_kept_fraction():
    study = study_config.load(ROOT / "config" / "paper.yaml")
    runs = [layout.parse(layout.WINDOW + "/result.json", p) for p in window.targets(study)]
    left_out = study.config["experiments"]["window"]["left_out"]
    for keep, fits in (("0.4", left_out), ("0.5", [v for v in left_out if v <= 0.5])):  # 0.6 is past 1 - 0.5
        assert sorted({float(r["left_out"]) for r in runs if r["keep"] == keep}) == fits
    assert len(runs) == len(study.noise) * (11 + 10) * 4


def write(tmp_path, **config):
    path = tmp_path / f"override-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "override, message",
    [
        ({"pruning": {"kept": [1.5]}}, "1.5 is greater than the maximum of 1"),
        ({"train": {"epochs": "many"}}, "'many' is not of type 'integer'"),
        ({"trian": {"epochs": 3}}, "'trian' was unexpected"),
        ({"datasets": {"cifar10": {"path": "/nonexistent/cifar.tar.gz"}}}, "/nonexistent/cifar.tar.gz"),
        ({"pruning": {"methods": ["el2n_e7"]}}, "'el2n_e7' needs a score"),
        ({"experiments": {"window": {"dataset": "imagenet"}}}, "'imagenet' is not in datasets"),
        ({"experiments": {"window": {"positions": [0, 1]}}}, "'positions' was unexpected"),
        ({"experiments": {"window": {"left_out": [0, 0.02, 0.61]}}}, "[0.61] leave out more than 1 - min(kept) = 0.6"),
        ({"experiments": {"window": {"left_out": [0, 0.5]}}}, "must hold 0 (the hardest window) and contrast_left_out"),
        ({"experiments": {"window": {"left_out": [0.02, 0.5]}}}, "[0] missing"),
        ({"experiments": {"lmc": {"spawn_epochs": [0, 9]}}}, "epoch 9"),
        ({"experiments": {"lmc": {"parents": 4}}}, "4 parents, but the parents are the scoring runs"),
        ({"pruning": {"methods": ["keep-el2n_e1"]}}, "'keep-el2n_e1' does not match"),
        (
            {"experiments": {"size_sweep": {"sizes": [120, 60000]}}},
            "[60000] are larger than cifar10's 50000 training examples",
        ),
        ({"experiments": {"size_sweep": {"sizes": [40, 300]}}}, "0.5 of 40 examples) is smaller than one batch of 32"),
        ({"experiments": {"size_sweep": {"score": "aum"}}}, "'aum' is not a score of a checkpoint"),
        ({"scores": {"seeds": 3, "seeds_per_repeat": 2}}, "for each of the 2 repeats need scores.seeds >= 4, not 3"),
        ({"scores": {"seeds": 4, "seeds_per_repeat": 2}}, "the size sweep selects by the mean of all its scoring runs"),
        (
            {"scores": {"seeds": 3, "short_runs": True}, "pruning": {"methods": ["random", "el2n_e1"]}},
            "how_early, lmc, noise.levels need scoring runs trained to the end",
        ),
        (
            {
                "scores": {"seeds": 3, "short_runs": True},
                "noise": {"levels": [0.0]},
                "pruning": {"methods": ["aum"]},
                "experiments": {"how_early": {"activate": False}, "lmc": {"activate": False}},
            },
            "scores.short_runs computes no forgetting or AUM",
        ),
    ],
)
def test_bad_config_is_one_clear_error_naming_it(tmp_path, monkeypatch, override, message):
    monkeypatch.chdir(ROOT)  # the dataset path of config.yaml is relative to the checkout
    with pytest.raises(study_config.ConfigError, match=re.escape(message)):
        study_config.load(ROOT / "config" / "tiny.yaml", write(tmp_path, **override)).check()


@pytest.mark.parametrize("preset", sorted((ROOT / "config").glob("*.yaml")), ids=lambda p: p.stem)
def test_a_preset_holds_only_what_differs_from_config_yaml_and_the_schema_defaults(preset):
    def restated(over, base, prefix=""):
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                yield from restated(value, base[key], f"{prefix}{key}.")
            elif key in base and base[key] == value:
                yield prefix + key

    base = study_config.load().config
    assert list(restated(yaml.safe_load(preset.read_text()), base)) == []
    assert study_config.load(preset).config["study"] == preset.stem


def test_ccs_beta_is_one_number_or_a_map_from_kept_fraction(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    paper = study_config.Study(study_config.load(ROOT / "config" / "paper.yaml").config)
    assert [specs.selection(paper, "ccs-el2n_e20", keep)["beta"] for keep in (0.1, 0.2, 0.5, 0.9)] == [
        0.3,
        0.1,
        0.1,
        0.1,
    ]
    laptop = study_config.Study(study_config.load().config)
    assert laptop.curve_score == "el2n_e10"  # the claims' score: the curve's EL2N, not transfer's default
    assert specs.selection(laptop, "ccs-el2n_e2", 0.3) == {"kind": "ccs", "beta": 0.1, "strata": 50}
    assert specs.selection(laptop, "el2n_e2", 0.3) == {"kind": "keep_max"}
    bad = write(tmp_path, pruning={"ccs": {"beta": [{"kept": 0.1}]}})
    with pytest.raises(study_config.ConfigError, match="beta"):
        study_config.load(ROOT / "config" / "tiny.yaml", bad)


def test_where_a_job_runs_is_not_what_it_is():
    config = study_config.load(ROOT / "config" / "paper.yaml").config
    placed = {**config, "results_dir": "/elsewhere", "threads": 32, "device": "cpu", "tracking": {"uri": "http://x"}}
    assert study_config.identity(placed) == study_config.identity(config)
    assert study_config.identity(config)["train"] == config["train"]


def test_a_results_folder_refuses_another_config_and_names_what_differs(tmp_path):
    config = study_config.load(ROOT / "config" / "tiny.yaml").config
    first = study_config.Study({**config, "results_dir": str(tmp_path)})
    first.check_same_study()
    first.record()
    assert json.loads((tmp_path / "tiny" / "study_config.json").read_text())["study"] == "tiny"
    moved = study_config.Study({**config, "results_dir": str(tmp_path), "threads": 8})
    moved.check_same_study()  # placement is no part of a study's identity
    other = study_config.Study({**config, "results_dir": str(tmp_path), "pruning": {**config["pruning"], "kept": [1]}})
    with pytest.raises(study_config.ConfigError, match=r"made with another config \(it differs in pruning.kept\)"):
        other.check_same_study()


def test_a_results_folder_recorded_before_a_setting_was_added_agrees_only_with_its_value_that_computes_the_same(
    tmp_path,
):
    config = study_config.load(ROOT / "config" / "tiny.yaml").config
    made = study_config.Study({**config, "results_dir": str(tmp_path)})
    made.record()
    record = tmp_path / "tiny" / "study_config.json"
    older = json.loads(record.read_text())
    del older["train"]["flip"], older["train"]["whiten_bias_epochs"], older["train"]["precision"]
    del older["scores"]["entropy_epochs"]
    record.write_text(json.dumps(older))
    with pytest.raises(study_config.ConfigError, match=r"it differs in train.precision; train.precision: not in its"):
        made.check_same_study()  # precision's default (auto) is not what older studies computed in
    older["train"]["precision"] = config["train"]["precision"]
    record.write_text(json.dumps(older))
    made.check_same_study()  # random flips and a whitening bias trained throughout: as before
    alternate = study_config.Study(
        {**config, "results_dir": str(tmp_path), "train": {**config["train"], "flip": "alternate"}}
    )
    with pytest.raises(study_config.ConfigError, match=r"it differs in train.flip; train.flip: not in its record"):
        alternate.check_same_study()
    entropy = study_config.Study(
        {**config, "results_dir": str(tmp_path), "scores": {**config["scores"], "entropy_epochs": [1]}}
    )
    with pytest.raises(study_config.ConfigError, match=r"scores.entropy_epochs: not in its record"):
        entropy.check_same_study()  # a score the older study never took
    older["experiments"]["window"]["near_hard"] = 0.05  # removed by issue 31: it only judged a verdict
    record.write_text(json.dumps(older))
    made.check_same_study()


def test_a_torchvision_dataset_is_fetched_by_a_download_step_and_decoded_with_download_off():
    """Compute nodes often have no internet: the download step (a local rule, on the submit host) fetches,
    prepare_data (a cluster job) decodes what is there and never downloads."""
    paper = study_config.Study(study_config.load(ROOT / "config" / "paper.yaml").config)
    marker = paper.path(layout.DOWNLOADED, dataset="cifar10")
    assert specs.data_inputs(paper, "cifar10") == [marker]
    assert specs.data(paper, "cifar10").get("download", True) and specs.decode(paper, "cifar10")["download"] is False
    # A size-sweep subset is read from its parent's download, after its parent's decoding.
    assert specs.data_inputs(paper, "cifar10_n5000") == [paper.path(layout.DATASET, dataset="cifar10"), marker]
    assert specs.decode(paper, "cifar10_n5000")["download"] is False
    laptop = study_config.Study(study_config.load(ROOT / "config.yaml").config)  # a local archive: no download
    assert specs.data_inputs(laptop, "cifar10") == [specs.data(laptop, "cifar10")["path"]]
    assert specs.decode(laptop, "cifar10") == specs.data(laptop, "cifar10")


def test_each_repeat_selects_by_the_mean_of_its_own_scoring_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    headline = study_config.load(ROOT / "config" / "headline.yaml").check()
    assert [headline.repeat_seeds(r) for r in headline.repeats] == [[0, 1], [2, 3], [4, 5]]
    files = headline.selection_scores("cifar10", "airbench", "0.0", "el2n_e1")
    assert [layout.parse(layout.REPEAT_SCORES, f)["rep"] for f in files] == ["0", "1", "2"]
    assert headline.selection_scores("cifar10", "airbench", "0.0", "random") == []
    # Short scoring runs: no forgetting or AUM to select by, and each cut at its last checkpoint.
    assert headline.all_scores == ["el2n_e1", "input_norm"]
    run = SimpleNamespace(dataset="cifar10", arch="airbench", noise="0.0", seed="3")
    spec = specs.short_scoring(headline, run, headline.checkpoint_epochs)
    assert (spec["checkpoint_epochs"], spec["stop_epoch"], spec["run"]) == ([1], 1, 3)
    # Without seeds_per_repeat every repeat selects by the mean of all the scoring runs.
    laptop = study_config.load()
    assert [
        layout.parse(layout.MEAN_SCORES, f)["score"]
        for f in laptop.selection_scores("cifar10", "resnet18", "0.0", "el2n_e10")
    ] == ["el2n_e10"]


def test_a_study_prunes_by_moderate_and_by_entropy_as_by_any_kind_of_the_registry(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    methods = {"pruning": {"methods": ["random", "moderate-el2n_e10", "entropy_e10"]}}
    unscored = tmp_path / "unscored.yaml"
    unscored.write_text(yaml.safe_dump(methods))
    with pytest.raises(study_config.ConfigError, match=r"entropy_e10.*scores\.<kind>_epochs"):
        study_config.load(unscored).check()
    scored = tmp_path / "scored.yaml"
    scored.write_text(yaml.safe_dump({**methods, "scores": {"entropy_epochs": [10]}}))
    study = study_config.load(scored).check()
    assert study.scored[-1] == "entropy_e10" and 10 in study.checkpoint_epochs
    retrained = {layout.parse(layout.RETRAIN + "/result.json", p)["method"] for p in pruning.curve_targets(study)}
    assert retrained == {"full", "random", "moderate-el2n_e10", "entropy_e10"}
    assert specs.selection(study, "moderate-el2n_e10", 0.5) == {"kind": "moderate"}
    assert specs.selection(study, "entropy_e10", 0.5) == {"kind": "keep_max"}
