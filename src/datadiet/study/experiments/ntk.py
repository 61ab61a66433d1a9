"""NTK velocity (Fig. 3) of score-sorted blocks between the checkpoints at t and t+1."""

from .. import layout
from ..experiment import Experiment, Figure


def targets(study):
    if not study.active("ntk"):
        return []
    dataset = study.ntk["dataset"]
    return [
        study.path(layout.NTK, dataset=dataset, arch=study.arch_of(dataset), noise=noise, epoch=epoch)
        for noise in study.noise
        for epoch in study.ntk["epochs"]
    ]


def ntk_velocity(results, path):
    """Fig. 3: kernel velocity of blocks of examples sorted by score (easiest left), clean and noisy."""
    from ..figures import save, sns

    table = results["ntk"]

    data = table.assign(rank=lambda d: d.first_rank / d.num_examples, labels=lambda d: "noise " + d.noise.astype(str))
    grid = sns.relplot(
        data=data, x="rank", y="velocity", hue="labels", col="epoch", kind="line", marker="o", height=4, aspect=1.2
    )
    grid.set_axis_labels("block start (fraction of the score ranking, easiest = 0)", "NTK velocity (cosine distance)")
    save(grid.figure, path)


def ntk_rises(ntk, clean, main):
    """Velocity against the score rank of the block, described: the blocks of one run are neighbours in
    one ranking and one training run, not independent samples, so no test decides it."""
    from ...stats import spearman
    from ...verdicts import descriptive, not_measured

    where = {"dataset": main[0], "arch": main[1]}
    claim, theirs = "NTK velocity rises with EL2N", "higher score, higher velocity (Fig. 3)"
    if ntk.empty:
        return not_measured(claim, "paper", theirs, "experiments.ntk is not run", **where)
    data = ntk[ntk.noise == clean]
    if len(data) < 4:
        return not_measured(claim, "paper", theirs, f"{len(data)} blocks measured (needs 4)", **where)
    rho = spearman(data.first_rank, data.velocity).estimate
    ours = f"Spearman(rank, velocity) {rho:+.3f} over {len(data)} blocks of one run"
    why = "no verdict: neighbouring blocks of one run are correlated, not independent samples (a test needs runs)"
    return descriptive(claim, "paper", theirs, ours, why, scope="one run", **where)


def read(study, inputs, results):
    from ..collect import read_tables

    return {"ntk": read_tables(inputs["ntk"])}


def judge(results, regime):
    return [ntk_rises(results["ntk"], results["clean"], results["main"])]


FIGURE = Figure("ntk_velocity", "NTK velocity", "ntk", ntk_velocity, "experiments.ntk.activate is false")
EXPERIMENT = Experiment("ntk", {"ntk": targets}, read, (FIGURE,), judge)
