"""Faults: a killed training run, a full disk while writing an artifact."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from eenet import io

DRIVER = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, {tests!r})
    from helpers import band_split
    from eenet.models import build_model
    from eenet.training.loop import TrainConfig, train_multiexit
    torch.set_num_threads(1)
    train, val = band_split(1200, 0), band_split(48, 1)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=0.05, milestones=[2], augment_pad=1, distill_start=0.5)
    torch.manual_seed(0)
    model = build_model("small_cnn_3", 3, 1, width=4)
    train_multiexit(model, train, val, cfg, sys.argv[1], "fp", torch.device("cpu"),
                    on_epoch=lambda h: print("EPOCH", h[-1]["epoch"], flush=True))
    torch.save(model.state_dict(), sys.argv[2])
    """
).format(tests=str(Path(__file__).parent))


def test_training_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    run = [sys.executable, str(script)]
    subprocess.run([*run, str(tmp_path / "a.pt"), str(tmp_path / "full.pt")], check=True, capture_output=True, timeout=600)

    ckpt = tmp_path / "b.pt"
    proc = subprocess.Popen([*run, str(ckpt), str(tmp_path / "resumed.pt")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "EPOCH 1"
    time.sleep(0.2)  # well inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed_at = io.load_checkpoint(ckpt)["epoch"]
    assert killed_at in (1, 2) and not (tmp_path / "resumed.pt").exists()

    out = subprocess.run([*run, str(ckpt), str(tmp_path / "resumed.pt")], check=True, capture_output=True, text=True, timeout=600)
    assert out.stdout.split() == [tok for e in range(killed_at + 1, 4) for tok in ("EPOCH", str(e))]
    full = torch.load(tmp_path / "full.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    for name, value in full.items():
        assert torch.allclose(value.float(), resumed[name].float(), atol=1e-6), name


def test_disk_full_while_writing_keeps_the_previous_artifact(tmp_path, monkeypatch):
    path = tmp_path / "eval.json"
    io.write_json(path, {"accuracy": 0.9})

    def full_disk(self, data, *args, **kwargs):
        with open(self, "w") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        io.write_json(path, {"accuracy": 0.1, "much": "more"})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"accuracy": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]  # no half-written temporary file left


def test_failed_tensor_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "val.safetensors"
    io.save_tensors(path, {"probs": torch.ones(2, 3)}, {"split": "val"})

    class FullDisk:  # the file eenet.io opens to write: a few bytes land, then the disk is full
        def __init__(self, filename, mode):
            self.fh = open(filename, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[:7])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "open", FullDisk, raising=False)  # the module's `open`, ahead of the builtin
    with pytest.raises(OSError, match="No space left on device"):  # the disk's own error, not another
        io.save_tensors(path, {"probs": torch.zeros(2, 3)}, {"split": "val"})
    tensors, meta = io.load_tensors(path)
    assert torch.equal(tensors["probs"], torch.ones(2, 3)) and meta == {"split": "val"}
    assert [p.name for p in tmp_path.iterdir()] == ["val.safetensors"]
