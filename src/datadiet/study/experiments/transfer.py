"""Architecture transfer: every architecture trained on the subsets every architecture's scores chose,
with random subsets and full data as the reference."""

from .pruning import full_data, retrain_result


def methods(score, arch, archs):
    return ["random"] + [score if by == arch else f"{score}-from-{by}" for by in archs]


def targets(study):
    transfer = study.transfer
    dataset, score, keep = transfer["dataset"], transfer["score"], transfer["keep"]
    paths = []
    for arch in transfer["archs"]:
        paths += [
            retrain_result(study, dataset, arch, study.clean, m, keep, r)
            for m in methods(score, arch, transfer["archs"])
            for r in study.repeats
        ]
        paths += full_data(study, dataset, arch, study.clean)
    return paths
