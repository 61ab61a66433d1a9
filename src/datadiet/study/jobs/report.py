"""The report step: figures, the claims table and the HTML page from the study's result files."""

import json

from ... import report as pages, results
from .. import config


def report(args):
    spec = json.loads(args.spec)
    study = config.Study({**spec["config"], "results_dir": "."})
    inputs = {
        k: getattr(args, k)
        for k in ("curve", "how_early", "window", "transfer", "ntk", "lmc", "sweep", "scores", "labels")
    }
    inputs["benchmarks"] = args.benchmarks
    pages.build(study, results.read_json(args.tracked), args.captions, inputs, args.out_dir, args.html)
