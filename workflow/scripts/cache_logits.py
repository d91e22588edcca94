"""Rule cache_logits: softmax of every exit on validation and test, [K, N, C] + labels, safetensors."""

from pathlib import Path

import _eenet_path  # noqa: F401  (src/ importable without an install, e.g. under --sdm conda)
import torch

from eenet.data import DATASETS, load_images, split_indices
from eenet.io import file_sha256, save_tensors
from eenet.models import load_model
from eenet.training import pick_device, predict_probs
from eenet.workflow import setup_logging

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
p = snakemake.params
log = setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
spec = DATASETS[p.dataset]
device = pick_device(p.device)
model, _ = load_model(snakemake.input.model, device)
root = Path(snakemake.input.data).parent
train_images, train_labels = load_images(p.dataset, root, train=True)
_, val_idx = split_indices(train_images.shape[0], p.split["val_size"], p.split["seed"])
test_images, test_labels = load_images(p.dataset, root, train=False)
if p.split.get("max_test"):
    test_images, test_labels = test_images[: p.split["max_test"]], test_labels[: p.split["max_test"]]
splits = {"val": (train_images[val_idx], train_labels[val_idx]), "test": (test_images, test_labels)}
model_sha = file_sha256(snakemake.input.model)
for name, (images, labels) in splits.items():
    # validation images go through exactly the test-time preprocessing: no augmentation
    probs = predict_probs(model, images, spec.mean, spec.std, p.batch_size, device)
    acc = (probs.argmax(2) == labels).float().mean(1).tolist()
    meta = {"bench": snakemake.wildcards.bench, "split": name, "dataset": p.dataset, "model_sha256": model_sha,
            "num_exits": probs.shape[0], "num_classes": probs.shape[2]}  # fmt: skip
    save_tensors(snakemake.output[name], {"probs": probs, "labels": labels}, meta)
    log.info("%s: %d samples, accuracy per exit %s", name, labels.numel(), " ".join(f"{a:.4f}" for a in acc))
