"""The user's tools: the `datadiet` command (`cli`, its commands), `datadiet prune` and the stand-alone
GPU check. They use the science core, its statistics and the run-time; only `datadiet estimate` and the
study's job steps reach into the study."""
