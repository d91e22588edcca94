# summary.csv, stats.csv and the combiners that lower an exit's validation accuracy (recorded in the combined
# policies' fitted files) as HTML tables, for the Snakemake report (make report) to show inline.
rule report_tables:
    input:
        summary="results/{bench}/summary.csv",
        stats="results/{bench}/stats.csv",
        schedulers=combined_scheduler_files,
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
