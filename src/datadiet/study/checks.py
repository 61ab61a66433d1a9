"""What the schema cannot say about a study's config: names that must refer to each other, epochs inside
training, sizes that fit their dataset. Each check raises one ConfigError naming the key."""

import os

from . import names

# Training-set sizes of the paper's datasets, for configs that read them whole; the size sweep's sizes
# must fit them.
KNOWN_SIZES = {"cifar10": 50_000, "cifar100": 50_000, "cinic10": 180_000}


class ConfigError(ValueError):
    """A config the study cannot run, with the key to mend."""


def check(study):
    """What the schema cannot say: names that must refer to each other, epochs inside training."""
    check_methods(study)
    check_scoring(study)
    check_window(study)
    check_sweep(study)
    for name, section in study.sections.items():
        if not study.active(name):
            continue
        if section["dataset"] not in study.datasets:
            raise ConfigError(f"config experiments.{name}.dataset: {section['dataset']!r} is not in datasets")
        if section["score"] not in study.all_scores:
            raise ConfigError(
                f"config experiments.{name}.score: {section['score']!r} is not a computed score {study.all_scores}"
            )
    if study.active("lmc") and study.lmc["parents"] > len(study.seeds):
        raise ConfigError(
            f"config experiments.lmc.parents: {study.lmc['parents']} parents, but the parents are the scoring "
            f"runs and there are scores.seeds = {len(study.seeds)} of them (raise scores.seeds or lower parents)"
        )
    last = max(study.checkpoint_epochs + study.spawn_epochs, default=0)
    if last > study.config["train"]["epochs"]:
        raise ConfigError(
            f"config: epoch {last} (a score, NTK or spawn epoch) is past the end of training "
            f"(train.epochs = {study.config['train']['epochs']})"
        )
    for name, spec in study.datasets.items():
        if spec["source"] != "torchvision" and not os.path.exists(spec.get("path", "")):
            raise ConfigError(f"config datasets.{name}.path: {spec.get('path')!r} does not exist")
    return study


def check_scoring(study):
    k, repeats = study.seeds_per_repeat, len(study.repeats)
    if k and len(study.seeds) < k * repeats:
        raise ConfigError(
            f"config scores.seeds_per_repeat: {k} scoring runs for each of the {repeats} repeats need "
            f"scores.seeds >= {k * repeats}, not {len(study.seeds)}"
        )
    if k and study.sizes:
        raise ConfigError(
            "config scores.seeds_per_repeat: the size sweep selects by the mean of all its scoring runs; "
            "turn off one of the two"
        )
    whole_run = [name for name in ("how_early", "lmc") if study.active(name)] + (
        ["noise.levels"] if study.noisy else []
    )
    if study.short_scoring and whole_run:
        raise ConfigError(
            f"config scores.short_runs: {', '.join(whole_run)} need scoring runs trained to the end "
            "(forgetting, spawn states, noisy scoring); turn them off or short_runs off"
        )


def check_window(study):
    from .experiments import window

    if not study.active("window"):
        return
    key, smallest = "config experiments.window", min(study.window["kept"])
    too_far = [v for v in study.window["left_out"] if not window.fits(smallest, v)]
    if too_far:
        raise ConfigError(
            f"{key}.left_out: {too_far} leave out more than 1 - min(kept) = {1 - smallest:g}, the share above "
            f"the easiest window of {smallest:g} kept"
        )
    missing = [v for v in (0, study.window["contrast_left_out"]) if v not in study.window["left_out"]]
    if missing:
        raise ConfigError(
            f"{key}.left_out must hold 0 (the hardest window) and contrast_left_out "
            f"({study.window['contrast_left_out']:g}); {missing} missing"
        )


def check_sweep(study):
    key, sweep = "config experiments.size_sweep", study.sweep
    if sweep["dataset"] not in study.datasets or not study.sizes:  # not run, or a dataset refused below
        return  # the dataset is checked with the other experiments'
    if names.Score.parse(sweep["score"]).epoch is None:
        raise ConfigError(
            f"{key}.score: {sweep['score']!r} is not a score of a checkpoint (<kind>_e<N>, <kind> in {names.AT_EPOCH})"
        )
    # Sizes are drawn from the whole training split of the source (a larger one than the study's
    # own dataset included), known here for the paper's datasets.
    name = study.datasets[sweep["dataset"]].get("name", sweep["dataset"])
    whole = KNOWN_SIZES.get(name)
    too_big = [n for n in sweep["sizes"] if whole and n > whole]
    if too_big:
        raise ConfigError(f"{key}.sizes: {too_big} are larger than {name}'s {whole} training examples")
    batch, smallest = study.train_config(sweep["dataset"])["batch_size"], min(sweep["sizes"]) * min(sweep["kept"])
    if smallest < batch:
        raise ConfigError(
            f"{key}: the smallest subset ({min(sweep['kept']):g} of {min(sweep['sizes'])} examples) is smaller "
            f"than one batch of {batch}"
        )


def check_methods(study):
    for key, methods in (("pruning.methods", study.methods), ("noise.methods", study.noisy_methods)):
        for method in methods:
            score = study.method(method).score
            if score is not None and str(score) not in study.all_scores:
                short = " (scores.short_runs computes no forgetting or AUM)" if study.short_scoring else ""
                raise ConfigError(
                    f"config {key}: {method!r} needs a score this config does not compute; "
                    f"computed scores: {study.all_scores} "
                    f"(add the epoch to scores.<kind>_epochs){short}"
                )
