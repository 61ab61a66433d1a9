# Report: figures, the claims table and one self-contained HTML page from the result files
# (never retrains).


rule report:
    input:
        curve=pruning.curve_targets(S),
        how_early=pruning.how_early_targets(S),
        window=window.targets(S),
        transfer=transfer.targets(S),
        ntk=ntk.targets(S),
        lmc=lmc.targets(S),
        sweep=size_sweep.targets(S),
        scores=scores.targets(S),
        labels=scores.labels(S),
        tracked=TRACKED,
    output:
        html=report(path(layout.REPORT), caption="../report/report.rst", category="Report"),
        curve=figure("pruning_curve"),
        size_sweep=figure("size_sweep"),
        how_early=figure("how_early"),
        window=figure("sliding_window"),
        noise=figure("noise_ranking"),
        transfer=figure("transfer"),
        spearman=figure("spearman"),
        seeds=figure("seeds"),
        ntk=figure("ntk_velocity"),
        lmc=figure("lmc_barrier"),
        table=report(path(f"{layout.FIGURES}/accuracy.csv"), caption="../report/accuracy.rst", category="Tables"),
        sweep_table=report(
            path(f"{layout.FIGURES}/size_sweep.csv"), caption="../report/size_sweep_table.rst", category="Tables"
        ),
        claims=report(path(f"{layout.FIGURES}/claims.csv"), caption="../report/claims.rst", category="Tables"),
        compute=report(
            path(f"{layout.FIGURES}/job_benchmarks.csv"), caption="../report/job_benchmarks.rst", category="Tables"
        ),
    params:
        # Every benchmarked job is upstream of the inputs above, so its file is there by now.
        benchmarks=path(layout.BENCHMARKS),
        captions=os.path.relpath(os.path.join(workflow.basedir, "workflow", "report")),
        spec=json.dumps(specs.report(S), sort_keys=True),
    resources:
        **cluster_resources("light"),
    conda:
        "../envs/datadiet.yaml"
    log:
        f"{OUT}/logs/report.log",
    shell:
        f"{DATADIET} job report --spec {{params.spec:q}} --tracked {{input.tracked:q}} --captions {{params.captions:q}}"
        " --curve {input.curve:q} --how-early {input.how_early:q} --window {input.window:q}"
        " --transfer {input.transfer:q} --ntk {input.ntk:q} --lmc {input.lmc:q} --sweep {input.sweep:q}"
        " --scores {input.scores:q}"
        " --labels {input.labels:q} --benchmarks {params.benchmarks:q} --out-dir $(dirname {output.table:q})"
        " --html {output.html:q} > {log:q} 2>&1"
