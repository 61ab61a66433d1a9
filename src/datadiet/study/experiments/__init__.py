"""One module per experiment of the paper: its result files (targets), its jobs, figure and claims.

Snakemake imports these modules on every run for their targets, so a figure or claim imports the
plotting toolkit, scipy, pandas and numpy inside the function, where it runs."""
