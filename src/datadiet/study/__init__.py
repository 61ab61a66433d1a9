"""The study: its vocabulary (names, layout, config), its jobs and one module per experiment.

The science (data, models, train, scores, selection, noise, dynamics) knows nothing of it; Snakemake
(workflow/rules/common.smk) and the CLI are thin adapters over it.
"""
