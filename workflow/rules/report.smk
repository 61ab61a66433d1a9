# Report: figures, the claims table and one self-contained HTML page from the result files
# (never retrains).


rule report:
    input:
        curve=curve_results(),
        how_early=how_early_results(),
        window=window_results(),
        transfer=transfer_results(),
        ntk=ntk_results(),
        lmc=lmc_results(),
        scores=report_scores(),
        labels=[f"{OUT}/{d}/data/labels_noise{n}.pt" for d in DATASETS for n in NOISE],
    output:
        html=report(f"{OUT}/report.html", caption="../report/report.rst", category="Report"),
        curve=figure("pruning_curve"),
        how_early=figure("how_early"),
        window=figure("sliding_window"),
        noise=figure("noise_ranking"),
        transfer=figure("transfer"),
        spearman=figure("spearman"),
        seeds=figure("seeds"),
        ntk=figure("ntk_velocity"),
        lmc=figure("lmc_barrier"),
        table=report(f"{FIGURES}/accuracy.csv", caption="../report/accuracy.rst", category="Tables"),
        claims=report(f"{FIGURES}/claims.csv", caption="../report/claims.rst", category="Tables"),
        compute=report(f"{FIGURES}/job_benchmarks.csv", caption="../report/job_benchmarks.rst", category="Tables"),
    params:
        # Every benchmarked job is upstream of the inputs above, so its file is there by now.
        benchmarks=f"{OUT}/benchmarks",
        spec=json.dumps(
            {
                "study": STUDY,
                "config": config,
                "tracking": TRACKING,
                "clean": float(CLEAN),
                "arch": {d: arch_of(d) for d in DATASETS},
                "experiments": {"window": WINDOW, "transfer": TRANSFER, "ntk": NTK, "lmc": LMC},
                "captions": os.path.join(workflow.basedir, "workflow", "report"),
            },
            sort_keys=True,
        ),
    resources:
        **cluster_resources("light"),
    conda:
        "../../environment.yml"
    log:
        f"{OUT}/logs/report.log",
    shell:
        "datadiet report --spec {params.spec:q} --curve {input.curve:q} --how-early {input.how_early:q}"
        " --window {input.window:q} --transfer {input.transfer:q} --ntk {input.ntk:q} --lmc {input.lmc:q}"
        " --scores {input.scores:q} --labels {input.labels:q} --benchmarks {params.benchmarks:q}"
        " --out-dir $(dirname {output.table:q}) --html {output.html:q} > {log:q} 2>&1"
