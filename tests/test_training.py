from pathlib import Path

import pytest
import torch
from helpers import band_split

from eenet.data import augment_batch, split_indices
from eenet.models import build_model
from eenet.training.inference import predict_probs
from eenet.training.loop import TrainConfig, exit_weights, multiexit_loss, train_multiexit


def test_exit_weights_follow_the_paper():
    assert exit_weights(3) == pytest.approx([1 / 12, 2 / 12, 3 / 12])
    assert sum(exit_weights(4)) == pytest.approx(0.5)
    assert exit_weights(1) == [1.0]  # a plain network: plain cross-entropy, not half of it


def test_distillation_adds_a_term_only_when_asked():
    torch.manual_seed(0)
    logits = [torch.randn(8, 5) for _ in range(3)]
    y = torch.randint(0, 5, (8,))
    w = exit_weights(3)
    plain = multiexit_loss(logits, y, w, distill=False)
    assert plain == pytest.approx(sum(wi * torch.nn.functional.cross_entropy(z, y) for wi, z in zip(w, logits, strict=True)))
    assert multiexit_loss(logits, y, w, distill=True) > plain


def test_split_is_seeded_and_disjoint():
    tr, va = split_indices(100, 20, seed=3)
    tr2, va2 = split_indices(100, 20, seed=3)
    assert torch.equal(va, va2) and len(va) == 20 and len(tr) == 80
    assert not set(tr.tolist()) & set(va.tolist())
    assert not torch.equal(va, split_indices(100, 20, seed=4)[1])


def _shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``img`` [C, H, W] moved by (dy, dx) pixels, zeros where it moved away from."""
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = img[:, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


def test_augmentation_flips_half_the_images_exactly_and_leaves_the_rest():
    x = torch.randint(1, 256, (2000, 1, 4, 4), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    assert torch.equal(augment_batch(x, 0, False, torch.Generator().manual_seed(0)), x)
    flipped = augment_batch(x, 0, True, torch.Generator().manual_seed(1))
    assert torch.equal(flipped, augment_batch(x, 0, True, torch.Generator().manual_seed(1)))  # the generator decides
    mirrored = (flipped == x.flip(-1)).flatten(1).all(1)
    kept = (flipped == x).flatten(1).all(1)
    assert bool((mirrored ^ kept).all())  # every image is itself or its mirror image (left-right), never anything else
    assert 0.45 < mirrored.float().mean().item() < 0.55  # a fair coin per image (2000 draws: 4.5 standard deviations)


def test_augmentation_crops_move_each_image_by_at_most_the_padding():
    x = torch.randint(1, 256, (600, 1, 5, 5), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    cropped = augment_batch(x, 1, False, torch.Generator().manual_seed(4))
    assert cropped.shape == x.shape
    shifts = []
    for i in range(len(x)):
        (found,) = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if torch.equal(cropped[i], _shifted(x[i], dy, dx))]
        shifts.append(found)
    assert set(shifts) == {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}  # every offset of the padding occurs


def test_training_learns_and_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    train, val = band_split(96, 0), band_split(48, 1)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=0.05, milestones=[2], augment_pad=1, augment_flip=False, distill_start=0.5)

    def run(ckpt, stop_after=None):
        def on_epoch(history):
            if history[-1]["epoch"] == stop_after:
                raise KeyboardInterrupt  # a run killed right after this epoch's checkpoint

        torch.manual_seed(0)
        model = build_model("small_cnn_3", 3, 1, width=4)
        hist = train_multiexit(model, train, val, cfg, ckpt, "fp", torch.device("cpu"), on_epoch=on_epoch)
        return model, hist

    full, hist = run(tmp_path / "a.pt")
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["val_acc_exit2"] > 0.6
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", stop_after=2)
    resumed, hist_b = run(tmp_path / "b.pt")
    assert [h["epoch"] for h in hist_b] == [1, 2, 3]
    assert [h["train_loss"] for h in hist_b] == pytest.approx([h["train_loss"] for h in hist])
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    probs = predict_probs(full, val)
    assert probs.shape == (3, 48, 3) and torch.allclose(probs.sum(2), torch.ones(3, 48))


def test_checkpoint_of_another_recipe_is_not_resumed(tmp_path, caplog):
    train = band_split(32, 0)
    cfg = TrainConfig(epochs=1, batch_size=16, milestones=[], augment_pad=0)
    model = build_model("small_cnn_3", 3, 1, width=4)
    train_multiexit(model, train, train, cfg, tmp_path / "c.pt", "recipe-A", torch.device("cpu"))
    with caplog.at_level("INFO"):
        hist = train_multiexit(model, train, train, cfg, tmp_path / "c.pt", "recipe-B", torch.device("cpu"))
    assert "different recipe" in caplog.text and len(hist) == 1


def test_non_finite_loss_names_epoch_and_batch(tmp_path):
    train = band_split(32, 0)
    model = build_model("small_cnn_3", 3, 1, width=4)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e30, momentum=0.0, milestones=[], augment_pad=0)
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch \d+; checkpoint .* still holds epoch 0"):
        train_multiexit(model, train, train, cfg, tmp_path / "d.pt", "x", torch.device("cpu"))
    assert not (tmp_path / "d.pt").exists()  # nothing written with NaNs in it


def test_nan_in_a_later_epoch_leaves_the_last_good_checkpoint(tmp_path):
    from eenet.io import load_checkpoint

    train = band_split(32, 0)
    torch.manual_seed(0)
    model = build_model("small_cnn_3", 3, 1, width=4)
    cfg = TrainConfig(epochs=3, batch_size=16, milestones=[], augment_pad=0)

    def poison(history):  # after epoch 1's checkpoint, the weights go bad
        model.heads[2].fc.weight.data.fill_(float("nan"))

    with pytest.raises(FloatingPointError, match="at epoch 2, batch 1; checkpoint .* still holds epoch 1"):
        train_multiexit(model, train, train, cfg, tmp_path / "e.pt", "x", torch.device("cpu"), on_epoch=poison)
    state = load_checkpoint(tmp_path / "e.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_a_checkpoint_of_other_code_or_another_recipe_is_not_resumed(tmp_path):
    from eenet.training.fingerprint import code_digest, training_fingerprint

    code = [tmp_path / "a.py", tmp_path / "b.py"]
    code[0].write_text("x = 1\n")
    code[1].write_text("y = 2\n")
    recipe = {"arch": "small_cnn_3", "train": {"epochs": 2}}
    fp = training_fingerprint(recipe, code_digest(code, tmp_path))
    assert fp == training_fingerprint(dict(recipe), code_digest(list(reversed(code)), tmp_path))  # file order does not matter
    assert fp != training_fingerprint({**recipe, "train": {"epochs": 3}}, code_digest(code, tmp_path))
    code[1].write_text("y = 3\n")  # e.g. a head that pools differently, same parameters
    assert fp != training_fingerprint(recipe, code_digest(code, tmp_path))


def test_comments_docstrings_and_messages_resume_a_checkpoint_a_change_to_the_loss_or_a_model_does_not(tmp_path):
    """The training job's code digest over a copy of the package: what cannot change a weight (a comment in a model
    module, a docstring, an error message, a log line, any edit of the workflow layer) keeps the digest -- the
    checkpoint resumes; a change to the loss or to a model's layers changes it -- the run starts again."""
    import shutil

    from eenet.pipeline.trainjob import weights_code_digest

    src = tmp_path / "src"
    shutil.copytree(Path(__file__).resolve().parents[1] / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    base = weights_code_digest(src)
    assert base == weights_code_digest()  # the copy is this checkout's code

    def edit(rel: str, old: str, new: str) -> str:
        f = src / "eenet" / rel
        text = f.read_text()
        assert old in text, (rel, old)
        f.write_text(text.replace(old, new, 1))
        return weights_code_digest(src)

    cnn, loop = "models/cnn.py", "training/loop.py"
    assert edit(cnn, "\n\n", "\n# a comment added to a model module\n\n") == base
    assert edit(loop, '"""Weighted cross-entropy over exits', '"""Re-worded: weighted cross-entropy over exits') == base
    assert edit(loop, '"unknown optimizer {cfg.optimizer!r}', '"optimizer {cfg.optimizer!r} is unknown') == base
    assert edit("pipeline/logs.py", "\n\n", "\nLOGGING_EDIT = 1\n\n") == base  # the workflow layer is not the weights\' code
    changed = edit(loop, "distill_weight: float = 0.01", "distill_weight: float = 0.02")  # the loss
    assert changed != base
    shutil.copy(Path(__file__).resolve().parents[1] / "src" / "eenet" / loop, src / "eenet" / loop)
    assert weights_code_digest(src) == base
    assert edit(cnn, "nn.ReLU(inplace=True)", "nn.GELU()") != base  # a model's layers


def test_predict_outputs_keeps_the_cached_probabilities_byte_identical_beside_the_raw_logits():
    from eenet.training.inference import predict_outputs

    torch.manual_seed(0)
    model = build_model("small_cnn_3", 3, 1, width=4)
    split = band_split(70, 3)
    logits, probs = predict_outputs(model, split, batch_size=32)
    assert torch.equal(probs, predict_probs(model, split, batch_size=32))  # what cache_logits stored before
    assert logits.shape == probs.shape == (3, 70, 3)
    assert torch.allclose(torch.softmax(logits, 2), probs, atol=1e-6)
    assert not torch.allclose(logits.exp().sum(2), torch.ones(3, 70))  # raw logits, not log-probabilities


def test_train_benchmark_is_a_library_call_that_writes_the_model_and_metrics(tiny_dataset, tmp_path):
    """The training job without the workflow: a fetched dataset's manifest in, model.pt and the metrics CSV out; the
    checkpoint's fingerprint is the recipe's with the ``code`` given; a job of unknown keys is refused."""
    from eenet.data import dataset_spec
    from eenet.data.fetch import fetch_dataset
    from eenet.io import file_sha256, load_checkpoint, read_csv, write_json
    from eenet.training.fingerprint import training_fingerprint
    from eenet.training.job import TrainJob, train_benchmark

    mirror, _ = tiny_dataset
    root = tmp_path / "data" / "tiny"
    paths = fetch_dataset("tiny", root, str(mirror))
    manifest = root / "manifest.json"
    write_json(manifest, {"dataset": "tiny", "source": str(mirror), "files": {p.name: file_sha256(p) for p in paths},
                          "spec": dataset_spec("tiny").to_json()})  # fmt: skip
    job = {"dataset": "tiny", "arch": "small_cnn_3", "arch_kwargs": {"width": 4}, "split": {"val_size": 4, "seed": 0},
           "train": {"epochs": 1, "batch_size": 4, "milestones": [], "augment_pad": 0}, "device": "cpu", "max_length": 128,
           "checkpoint": str(tmp_path / "ckpt.pt"), "data": str(manifest), "threads": 1, "model": str(tmp_path / "model.pt"),
           "metrics": str(tmp_path / "metrics.csv")}  # fmt: skip
    history = train_benchmark(job, code="the code")
    assert [r["epoch"] for r in read_csv(tmp_path / "metrics.csv")] == ["1"] == [str(r["epoch"]) for r in history]
    meta = load_checkpoint(tmp_path / "model.pt")
    recipe = {k: job[k] for k in ("arch", "arch_kwargs", "split", "train", "max_length")} | {"data": file_sha256(manifest)}
    assert meta["fingerprint"] == training_fingerprint(recipe, "the code") and meta["num_classes"] == 10
    assert "device" not in meta  # no run metadata asked for
    assert TrainJob.from_dict(job).to_dict() == {**job, "log": None}
    with pytest.raises(ValueError, match=r"unknown keys \['epochs'\], missing keys \['metrics'\]"):
        TrainJob.from_dict({**{k: v for k, v in job.items() if k != "metrics"}, "epochs": 1})
