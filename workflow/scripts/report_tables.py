"""Rule report_tables: summary.csv and stats.csv as one HTML page (tables.html) that the Snakemake report shows inline."""

from eenet.analysis.tables import tables_html
from eenet.io import atomic_path, read_csv
from eenet.pipeline.logs import setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
bench = snakemake.wildcards.bench
log = setup_logging(snakemake.log[0])
stats = read_csv(snakemake.input.stats)
summary = read_csv(snakemake.input.summary)
page = tables_html(
    f"{bench}: statistics and summary",
    [
        ("stats.csv", "Per policy and budget: accuracy, advantage over MaxPred with its paired bootstrap 95 % interval, gap to "
         "the oracle, cost / budget; per policy (budget_value = all): mean accuracy over the budget range (auc), mean gap "
         "to the oracle, share of budgets exceeded.", stats),
        ("summary.csv", "Every policy at every budget and every single exit: test accuracy and realised cost (simulated and "
         "measured), validation accuracy and cost, exit histogram.", summary),
    ],
)  # fmt: skip
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(page)
log.info("%s: %d stats rows, %d summary rows", snakemake.output[0], len(stats), len(summary))
