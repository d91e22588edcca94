"""Rule download_dataset: verified files of one dataset, from a local mirror, the user's own source or a download.

The output is a manifest written last, once every file is verified in place: file -> sha256, and the dataset's
spec completed with what the files tell (classes, image size, normalisation), which the later rules read.
"""

from pathlib import Path

from eenet.data import DatasetSpec
from eenet.data.fetch import prepare_dataset
from eenet.io import file_sha256, write_json
from eenet.pipeline.logs import setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
name = snakemake.wildcards.dataset
log = setup_logging(snakemake.log[0])
root = Path(snakemake.output[0]).parent
entry = {k: v for k, v in dict(snakemake.params.source).items()}
paths, spec = prepare_dataset(DatasetSpec.from_entry(name, entry), root)
files = {str(Path(f).relative_to(root)): file_sha256(f) for f in paths}
source = spec.path or spec.mirror or spec.url or spec.train or spec.hub or "download"
write_json(snakemake.output[0], {"dataset": name, "source": source, "files": files, "spec": spec.to_json()})
log.info("dataset %s ready (%s classes%s): %s", name, spec.num_classes, f": {', '.join(spec.classes[:10])}" if spec.classes else "",
         ", ".join(map(str, paths)))  # fmt: skip
