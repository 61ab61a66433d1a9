"""The pruning curve (Fig. 1 bottom, and under label noise) and how early scores work (Fig. 1 top):
retraining on the subsets each method keeps, for the same number of steps as full data."""

from .. import layout


def retrain_result(study, dataset, arch, noise, method, keep, rep):
    where = {"dataset": dataset, "arch": arch, "noise": noise, "method": method, "keep": keep, "rep": rep}
    return study.path(layout.RETRAIN + "/result.json", **where)


def full_data(study, dataset, arch, noise):
    return [retrain_result(study, dataset, arch, noise, "full", 1.0, r) for r in study.repeats]


def curve_targets(study):
    """Every dataset at every noise level: full data once, every method at every pruned fraction (under
    noise, noise.methods)."""
    paths = []
    for dataset in study.datasets:
        arch = study.arch_of(dataset)
        for noise in study.noise:
            methods = study.methods if noise == study.clean else study.noisy_methods
            paths += full_data(study, dataset, arch, noise)
            paths += [
                retrain_result(study, dataset, arch, noise, m, k, r)
                for m in methods
                for k in study.pruned
                for r in study.repeats
            ]
    return paths


def how_early_methods(study):
    epochs = study.how_early["epochs"]
    return [f"{kind}_e{t}" for kind in ("grand", "el2n") for t in epochs] + ["forgetting", "random"]


def how_early_targets(study):
    """One kept fraction per dataset, GraNd@t and EL2N@t for every early t, with forgetting and random
    as reference lines (clean labels)."""
    return [
        retrain_result(study, dataset, study.arch_of(dataset), study.clean, m, spec["how_early_keep"], r)
        for dataset, spec in study.datasets.items()
        for m in how_early_methods(study)
        for r in study.repeats
    ]
