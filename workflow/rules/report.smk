# Report: figures, the claims table and one self-contained HTML page from the result files
# (never retrains).


REPORT_INPUTS = experiments.report_inputs(STUDY)


rule report:
    input:
        **REPORT_INPUTS,
        tracked=TRACKED,
    output:
        html=report(path(layout.REPORT), caption="../report/report.rst", category="Report"),
        **{name: figure(name) for name in (f.name for f in experiments.FIGURES)},
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
        spec=json.dumps(specs.report(STUDY), sort_keys=True),
    resources:
        **cluster_resources("light"),
    conda:
        "../envs/datadiet.yaml"
    log:
        job_log("report"),
    shell:
        f"{DATADIET} job report --spec {{params.spec:q}} --tracked {{input.tracked:q}} --captions {{params.captions:q}} "
        + " ".join(f"--{name.replace('_', '-')} {{input.{name}:q}}" for name in REPORT_INPUTS)
        + " --benchmarks {params.benchmarks:q} --out-dir $(dirname {output.table:q})"
        " --html {output.html:q} > {log:q} 2>&1"
