"""The report step: figures, the claims table and the HTML page from the study's result files, then
the study's run in MLflow (see study_run) from them."""

import json

from ...runtime import files
from .. import config, experiments, report as pages, study_run


def report(args):
    spec = json.loads(args.spec)
    study = config.Study({**spec["config"], "results_dir": "."})
    inputs = {name: getattr(args, name) for name in experiments.inputs()} | {"benchmarks": args.benchmarks}
    store = files.read_json(args.tracked)
    pages.build(study, store, args.captions, inputs, args.out_dir, args.html)
    study_run.log_study(store, spec["study"], spec["config"], args.out_dir, args.html)
