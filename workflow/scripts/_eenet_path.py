"""Puts the repository's src/ first on sys.path, so that the scripts import this checkout's eenet package:
also in an environment where it is not installed (e.g. a conda environment made by ``--sdm conda``), and
never another checkout's (an editable install elsewhere, or Snakemake's search paths, come later).

Snakemake puts this directory on the scripts' search path; each script imports this module first.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
while SRC in sys.path:
    sys.path.remove(SRC)
sys.path.insert(0, SRC)
