"""The sliding window (Fig. 2): a window of each kept fraction slid over the score ranking, clean and
under every noise level."""

from .. import layout


def targets(study):
    window, dataset = study.window, study.window["dataset"]
    return [
        study.path(
            layout.WINDOW + "/result.json",
            dataset=dataset,
            arch=study.arch_of(dataset),
            noise=noise,
            score=window["score"],
            keep=keep,
            position=position,
            rep=rep,
        )
        for noise in study.noise
        for keep in window["kept"]
        for position in window["positions"]
        for rep in range(window["repeats"])
    ]
