"""eenet: budgeted early-exit inference (EENet, WACV 2024) — models, scores, schedulers, costs.

The Snakemake workflow under ``workflow/`` calls into this package; everything reusable lives here.
"""

__version__ = "0.1.0"
