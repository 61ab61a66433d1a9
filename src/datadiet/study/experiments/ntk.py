"""NTK velocity (Fig. 3) of score-sorted blocks between the checkpoints at t and t+1."""

from .. import layout


def targets(study):
    dataset = study.ntk["dataset"]
    return [
        study.path(layout.NTK, dataset=dataset, arch=study.arch_of(dataset), noise=noise, epoch=epoch)
        for noise in study.noise
        for epoch in study.ntk["epochs"]
    ]


def ntk_velocity(table, path):
    """Fig. 3: kernel velocity of blocks of examples sorted by score (easiest left), clean and noisy."""
    from ...figures import save, sns

    data = table.assign(rank=lambda d: d.first_rank / d.num_examples, labels=lambda d: "noise " + d.noise.astype(str))
    grid = sns.relplot(
        data=data, x="rank", y="velocity", hue="labels", col="epoch", kind="line", marker="o", height=4, aspect=1.2
    )
    grid.set_axis_labels("block start (fraction of the score ranking, easiest = 0)", "NTK velocity (cosine distance)")
    save(grid.figure, path)


def ntk_rises(ntk, clean):
    from scipy.stats import spearmanr

    from ...claims import row

    data = ntk[ntk.noise == clean]
    result = spearmanr(data.first_rank, data.velocity)
    return row(
        "NTK velocity rises with EL2N",
        "paper",
        f"Spearman(rank, velocity) {result.statistic:.2f} (p={result.pvalue:.2g}, {len(data)} blocks)",
        "higher score, higher velocity (Fig. 3)",
        result.statistic > 0,
        result.pvalue < 0.05,
        None,
        unsure="rank correlation not significant (p >= 0.05)",
    )
