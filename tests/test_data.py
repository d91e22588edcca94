import gzip
import hashlib
import struct
from pathlib import Path

import pytest
import torch

from eenet import data
from eenet.data import DatasetSpec, load_images, read_idx
from eenet.data.fetch import ChecksumError, fetch_dataset


def idx_bytes(array: torch.Tensor) -> bytes:
    """Encode a uint8 tensor in the IDX format (the MNIST files' real format)."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.contiguous().numpy().tobytes()


@pytest.fixture
def tiny_dataset(tmp_path, monkeypatch):
    """A 12-image dataset in Fashion-MNIST's real file format and layout, registered as 'tiny'."""
    g = torch.Generator().manual_seed(0)
    arrays = {
        "train-images-idx3-ubyte": torch.randint(0, 256, (12, 28, 28), generator=g, dtype=torch.uint8),
        "train-labels-idx1-ubyte": torch.randint(0, 10, (12,), generator=g, dtype=torch.uint8),
        "t10k-images-idx3-ubyte": torch.randint(0, 256, (5, 28, 28), generator=g, dtype=torch.uint8),
        "t10k-labels-idx1-ubyte": torch.randint(0, 10, (5,), generator=g, dtype=torch.uint8),
    }
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    files = {}
    for name, arr in arrays.items():
        raw = idx_bytes(arr)
        (mirror / f"{name}.gz").write_bytes(gzip.compress(raw))
        files[name] = hashlib.sha256(raw).hexdigest()
    spec = DatasetSpec(
        "tiny", kind="idx", torchvision_class="FashionMNIST", raw_subdir="Tiny/raw", files=files, num_classes=10, in_channels=1,
        image_size=28, mean=(0.5,), std=(0.5,),
    )  # fmt: skip
    monkeypatch.setitem(data.DATASETS, "tiny", spec)
    return mirror, arrays


def test_idx_round_trip(tmp_path):
    arr = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    (tmp_path / "x").write_bytes(idx_bytes(arr))
    assert torch.equal(read_idx(tmp_path / "x"), arr)
    (tmp_path / "y").write_bytes(idx_bytes(arr)[:-1])
    with pytest.raises(ValueError, match="header says"):
        read_idx(tmp_path / "y")


def test_fetch_from_mirror_verifies_and_loads(tiny_dataset, tmp_path):
    mirror, arrays = tiny_dataset
    paths = fetch_dataset("tiny", tmp_path / "data", str(mirror))
    assert [p.name for p in paths] == list(arrays)
    images, labels = load_images("tiny", tmp_path / "data", train=True)
    assert images.shape == (12, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(images[:, 0], arrays["train-images-idx3-ubyte"])
    assert torch.equal(labels, arrays["train-labels-idx1-ubyte"].long())


def test_corrupt_mirror_file_is_refused_and_leaves_nothing(tiny_dataset, tmp_path):
    mirror, _ = tiny_dataset
    bad = mirror / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(bad.read_bytes()))
    raw[-1] ^= 0xFF
    bad.write_bytes(gzip.compress(bytes(raw)))
    dest = tmp_path / "data"
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte"):
        fetch_dataset("tiny", dest, str(mirror))
    raw_dir = dest / "Tiny" / "raw"
    assert not (raw_dir / "t10k-labels-idx1-ubyte").exists()
    assert not [p for p in raw_dir.iterdir() if p.name.endswith(".tmp")]


def test_missing_mirror_file_is_named(tiny_dataset, tmp_path):
    mirror, _ = tiny_dataset
    (mirror / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        fetch_dataset("tiny", tmp_path / "data", str(mirror))


@pytest.mark.skipif(not (Path("/usr/share/datasets/fashion-mnist").is_dir()), reason="packaged Fashion-MNIST not installed")
def test_packaged_fashion_mnist_matches_the_published_content(tmp_path):
    fetch_dataset("fashion_mnist", tmp_path, "/usr/share/datasets/fashion-mnist")
    images, labels = load_images("fashion_mnist", tmp_path, train=False)
    assert images.shape == (10000, 1, 28, 28)
    assert torch.bincount(labels).tolist() == [1000] * 10
