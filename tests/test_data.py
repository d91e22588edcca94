import gzip

import pytest
import torch
from helpers import FMNIST, idx_bytes, needs_fmnist

from eenet.data import load_images, read_idx
from eenet.data.fetch import ChecksumError, fetch_dataset


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


@needs_fmnist
def test_packaged_fashion_mnist_matches_the_published_content(tmp_path):
    fetch_dataset("fashion_mnist", tmp_path, str(FMNIST))
    images, labels = load_images("fashion_mnist", tmp_path, train=False)
    assert images.shape == (10000, 1, 28, 28)
    assert torch.bincount(labels).tolist() == [1000] * 10
