"""Puts the repository's src/ on sys.path, so that the scripts import the eenet package even in an
environment where it is not installed (e.g. a conda environment made by ``--sdm conda``).

Snakemake puts this directory on the scripts' search path; each script imports this module first.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
