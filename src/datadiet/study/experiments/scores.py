"""Scores: full-data training runs per seed (checkpoints, forgetting and AUM), GraNd and EL2N from their
checkpoints, the input-norm control, and the mean over seeds."""

from .. import layout


def targets(study):
    """Clean: every score (rank correlations, seeds); noisy: the scores the noisy experiments use."""
    noisy = sorted(
        {str(study.method(m).score) for m in study.noisy_methods if study.method(m).score}
        | {study.window["score"], study.ntk["score"]}
    )
    paths = []
    for dataset in study.datasets:
        runs = {"dataset": dataset, "arch": study.arch_of(dataset)}
        paths += [study.path(layout.MEAN_SCORES, **runs, noise=study.clean, score=s) for s in study.all_scores]
        paths += [study.path(layout.MEAN_SCORES, **runs, noise=n, score=s) for n in study.noisy for s in noisy]
    return paths


def labels(study):
    return [study.path(layout.LABELS, dataset=d, noise=n) for d in study.datasets for n in study.noise]
