# Report: figures and one self-contained HTML page from the result files (never retrains).


rule report:
    input:
        results=pruning_results(),
        scores=expand(f"{OUT}/scores/noise{{noise}}/{{score}}/mean.csv", noise=NOISE, score=ALL_SCORES),
    output:
        html=report(f"{OUT}/report.html", caption="../report/report.rst", category="Report"),
        curve=report(
            f"{OUT}/figures/pruning_curve.png", caption="../report/pruning_curve.rst", category="Figures"
        ),
        spearman=report(f"{OUT}/figures/spearman.png", caption="../report/spearman.rst", category="Figures"),
        table=report(f"{OUT}/figures/accuracy.csv", caption="../report/accuracy.rst", category="Tables"),
    params:
        spec=json.dumps({"study": STUDY, "config": config, "tracking": TRACKING}, sort_keys=True),
        figures=f"{OUT}/figures",
    log:
        f"{OUT}/logs/report.log",
    shell:
        "datadiet report --spec {params.spec:q} --results {input.results:q} --scores {input.scores:q}"
        " --out-dir {params.figures:q} --html {output.html:q} > {log:q} 2>&1"
