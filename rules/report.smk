# summary.csv and stats.csv as HTML tables, for the Snakemake report (make report) to show inline.
rule report_tables:
    input:
        summary="results/{bench}/summary.csv",
        stats="results/{bench}/stats.csv",
        code=code("report_tables.py"),
    output:
        report(
            "results/{bench}/tables.html",
            caption="../workflow/report/tables.rst",
            category="Tables",
        ),
    log:
        "logs/{bench}/report_tables.log",
    localrule: True
    conda:
        ENV
    script:
        "../workflow/scripts/report_tables.py"
