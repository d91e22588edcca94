"""Rule report_tables: summary.csv, stats.csv and the combined policies whose combiner lowers an exit's validation
accuracy (from their fitted-policy files) as one HTML page (tables.html) that the Snakemake report shows inline."""

from eenet.analysis.tables import bench_tables_html, combiner_loss_rows
from eenet.io import atomic_path, read_csv
from eenet.pipeline.logs import setup_logging
from eenet.records import read_fitted_policy

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
bench = snakemake.wildcards.bench
log = setup_logging(snakemake.log[0])
stats = read_csv(snakemake.input.stats)
summary = read_csv(snakemake.input.summary)
fitted = {f: read_fitted_policy(f) for f in snakemake.input.schedulers}
page = bench_tables_html(bench, stats, summary, fitted)
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(page)
log.info("%s: %d stats rows, %d summary rows, %d combined policies losing accuracy at an exit", snakemake.output[0], len(stats),
         len(summary), len(combiner_loss_rows(fitted)))  # fmt: skip
