"""Rule cache_logits: raw logits and softmax of every exit on validation and test, [K, N, C] each + labels, safetensors."""

import torch

from eenet.data.prepare import open_fetched
from eenet.io import file_sha256
from eenet.models import load_model
from eenet.pipeline.logs import run_metadata, setup_logging
from eenet.records import write_logits_cache
from eenet.training.inference import pick_device, predict_outputs

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
device = pick_device(p.device)
model, meta = load_model(snakemake.input.model, device)
splits = open_fetched(snakemake.input.data, meta, p.split, ("val", "test"), max_length=p.max_length, workers=snakemake.threads)
model_sha = file_sha256(snakemake.input.model)
for name, split in splits.items():
    # validation samples go through exactly the test-time preprocessing: no augmentation
    logits, probs = predict_outputs(model, split, p.batch_size, device)
    acc = (probs.argmax(2) == split.labels).float().mean(1).tolist()
    info = {"bench": snakemake.wildcards.bench, "split": name, "dataset": p.dataset, "model_sha256": model_sha,
            "num_exits": probs.shape[0], "num_classes": probs.shape[2], "device": run_metadata(device)["device"]}  # fmt: skip
    write_logits_cache(snakemake.output[name], {"probs": probs, "logits": logits, "labels": split.labels}, info)
    log.info("%s: %d samples, accuracy per exit %s", name, len(split), " ".join(f"{a:.4f}" for a in acc))
