"""Linear mode connectivity (Fig. 4): two children spawned from one parent run at each spawn epoch,
trained on different data orders, and the error barrier between them on high-, low-score and random
example sets."""

from .. import layout

CHILDREN = (0, 1)


def targets(study):
    dataset = study.lmc["dataset"]
    return [study.path(layout.BARRIER, dataset=dataset, arch=study.arch_of(dataset), noise=study.clean)]
