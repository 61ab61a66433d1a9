"""One module per experiment of the paper: its result files (targets), its jobs, figure and claims."""
