"""Rule download_dataset: verified files of one dataset, from a local mirror or a download.

The output is a manifest (file -> sha256) written last, once every file is verified in place.
"""

from pathlib import Path

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)

from eenet.data import fetch_dataset
from eenet.io import file_sha256, write_json
from eenet.workflow import setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
name = snakemake.wildcards.dataset
log = setup_logging(snakemake.log[0])
root = Path(snakemake.output[0]).parent
paths = fetch_dataset(name, root, snakemake.params.mirror)
files = {str(Path(f).relative_to(root)): file_sha256(f) for f in paths}
write_json(snakemake.output[0], {"dataset": name, "source": snakemake.params.mirror or "download", "files": files})
log.info("dataset %s ready: %s", name, ", ".join(map(str, paths)))
