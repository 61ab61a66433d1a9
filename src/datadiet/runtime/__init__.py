"""The run-time: stopping cleanly, atomic files, progress, the hardware a job runs on and tracking in MLflow.

The edges of a run, not its science: the science core calls `files` and `hardware`; the study's jobs and
the user's tools add the rest."""
