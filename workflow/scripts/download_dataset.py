"""Rule download_dataset: verified raw files of one dataset, from a local mirror or a download.

The output is a manifest (file -> sha256) written last, once every file is verified in place.
"""

from pathlib import Path

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)

from eenet.data import DATASETS, fetch_dataset
from eenet.io import write_json
from eenet.workflow import setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
name = snakemake.wildcards.dataset
log = setup_logging(snakemake.log[0])
root = Path(snakemake.output[0]).parent
paths = fetch_dataset(name, root, snakemake.params.mirror)
write_json(
    snakemake.output[0],
    {
        "dataset": name,
        "source": snakemake.params.mirror or "download",
        "files": {f"{DATASETS[name].raw_subdir}/{f}": sha for f, sha in DATASETS[name].files.items()},
    },
)
log.info("dataset %s ready: %s", name, ", ".join(map(str, paths)))
