"""datadiet: score, prune and retrain, after "Deep Learning on a Data Diet" (Paul et al., 2021)."""
