"""NTK velocity (Fig. 3) of score-sorted blocks between the checkpoints at t and t+1."""

from .. import layout


def targets(study):
    dataset = study.ntk["dataset"]
    return [
        study.path(layout.NTK, dataset=dataset, arch=study.arch_of(dataset), noise=noise, epoch=epoch)
        for noise in study.noise
        for epoch in study.ntk["epochs"]
    ]
