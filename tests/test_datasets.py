"""The paper's datasets, offline: CIFAR archives served on loopback, an ImageNet-style folder, Hugging Face
parquet / CSV files and the packaged Rotten Tomatoes snippets, each in its real format."""

from __future__ import annotations

import csv
import hashlib
import io
import socket
import tarfile

import pytest
import torch
from helpers import cifar_archive, serve

from eenet import data
from eenet.data import CIFAR10, CIFAR100, DatasetSpec, load_images, open_split
from eenet.data.fetch import ChecksumError, DownloadError, fetch_dataset


@pytest.fixture(params=[CIFAR10, CIFAR100], ids=["cifar10", "cifar100"])
def cifar(request, tmp_path, monkeypatch):
    """A small archive in the format of the real one, registered under the real name with its md5."""
    spec = request.param
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / next(iter(spec.files))
    md5, records = cifar_archive(archive, spec)
    monkeypatch.setitem(data.DATASETS, spec.name, DatasetSpec(**{**spec.__dict__, "files": {archive.name: md5}}))
    return spec, mirror, records


def test_cifar_download_over_http_verifies_and_loads(cifar, tmp_path):
    spec, mirror, records = cifar
    srv, url = serve(mirror)
    try:
        paths = fetch_dataset(spec.name, tmp_path / "data", url)
    finally:
        srv.shutdown()
        srv.server_close()
    train, test, label_bytes = data.CIFAR_MEMBERS[spec.name]
    assert [p.name for p in paths] == train + test
    images, labels = load_images(spec.name, tmp_path / "data", train=True)
    rows = torch.cat([records[n] for n in train])
    assert images.shape == (rows.shape[0], 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(labels, rows[:, label_bytes - 1].long())  # CIFAR-100: the fine label
    assert torch.equal(images[3, 1].flatten(), rows[3, label_bytes + 1024 : label_bytes + 2048])  # channel planes, row-major
    assert load_images(spec.name, tmp_path / "data", train=False)[0].shape[0] == records[test[0]].shape[0]
    assert not (tmp_path / "data" / "batches.meta.txt").exists()  # only the known members are extracted
    assert [p.name for p in (tmp_path / "data").iterdir()] == [spec.raw_subdir]  # no download leftovers


def test_cifar_with_a_wrong_checksum_keeps_nothing(cifar, tmp_path, monkeypatch):
    spec, mirror, _ = cifar
    monkeypatch.setitem(data.DATASETS, spec.name, DatasetSpec(**{**spec.__dict__, "files": {next(iter(spec.files)): "0" * 32}}))
    srv, url = serve(mirror)
    try:
        with pytest.raises(ChecksumError, match=f"md5 is .*, expected {'0' * 32}; nothing was kept"):
            fetch_dataset(spec.name, tmp_path / "data", url)
    finally:
        srv.shutdown()
        srv.server_close()
    with pytest.raises(ChecksumError, match="expected 0000"):
        fetch_dataset(spec.name, tmp_path / "data", str(mirror))  # the same from a local directory
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]


def test_cifar_truncated_download_and_refused_connection_keep_nothing(cifar, tmp_path):
    spec, mirror, _ = cifar
    srv, url = serve(mirror, cut={next(iter(spec.files))})
    try:
        with pytest.raises(DownloadError, match="truncated"):
            fetch_dataset(spec.name, tmp_path / "data", url)
    finally:
        srv.shutdown()
        srv.server_close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=f"refused.*set datasets.{spec.name}.mirror"):
        fetch_dataset(spec.name, tmp_path / "data", f"http://127.0.0.1:{port}")
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]


def test_cifar_archive_with_a_wrong_member_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "mirror"
    bad.mkdir()
    archive = bad / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
        info.size = 100  # not whole records
        tar.addfile(info, io.BytesIO(b"x" * 100))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(data.DATASETS, "cifar10", DatasetSpec(**{**CIFAR10.__dict__, "files": {archive.name: md5}}))
    with pytest.raises(ChecksumError, match="not a file of 3073-byte records"):
        fetch_dataset("cifar10", tmp_path / "data", str(bad))
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]


def test_cifar_split_augments_on_request_only():
    g = torch.Generator().manual_seed(0)
    split = data.ImageSplit(
        torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(10), (0.5,) * 3, (0.25,) * 3, 4, True
    )
    plain = split.inputs(torch.arange(10), torch.device("cpu"))
    again = split.inputs(torch.arange(10), torch.device("cpu"))
    aug = split.inputs(torch.arange(10), torch.device("cpu"), augment=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(plain, again) and plain.shape == aug.shape == (10, 3, 32, 32)
    assert not torch.equal(plain, aug)
    assert torch.allclose(plain[0], (split.images[0].float() / 255 - 0.5) / 0.25)


# --- ImageNet: a user-given directory ----------------------------------------------------------------


def test_imagenet_without_its_directory_says_what_to_provide(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"set datasets.imagenet.path \(or mirror\) to the directory holding train/<class>/ and val/"
    ):
        fetch_dataset("imagenet", tmp_path / "data", None)
    with pytest.raises(FileNotFoundError, match="has 1 class folders, expected 1000"):
        fetch_dataset("imagenet", tmp_path / "data", str(tmp_path))


def test_imagefolder_is_indexed_and_decoded_by_workers(tmp_path, monkeypatch):
    from PIL import Image

    spec = DatasetSpec(**{**data.IMAGENET.__dict__, "name": "tinynet", "num_classes": 2, "image_size": 32})
    monkeypatch.setitem(data.DATASETS, "tinynet", spec)
    g = torch.Generator().manual_seed(0)
    for sub, n in (("train", 3), ("val", 2)):
        for cls in ("n01", "n02"):
            (tmp_path / "inet" / sub / cls).mkdir(parents=True)
            for i in range(n):
                img = torch.randint(0, 256, (3, 40 + 8 * i, 48), dtype=torch.uint8, generator=g)
                Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp_path / "inet" / sub / cls / f"{i}.JPEG", format="JPEG")
    paths = fetch_dataset("tinynet", tmp_path / "data", str(tmp_path / "inet"))
    with open(paths[0], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and [int(r["label"]) for r in rows] == [0, 0, 0, 1, 1, 1]
    train = open_split("tinynet", tmp_path / "data", "train", workers=1)
    batches = list(train.batches(4, torch.device("cpu"), shuffle=True, generator=torch.Generator().manual_seed(0), augment=True))
    assert [x.shape for x, _ in batches] == [(4, 3, 32, 32), (2, 3, 32, 32)]
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == [0, 0, 0, 1, 1, 1]
    test = open_split("tinynet", tmp_path / "data", "test")
    assert test.inputs(torch.arange(2), torch.device("cpu")).shape == (2, 3, 32, 32) and test.labels.tolist() == [0, 0, 1, 1]


# --- text: Hugging Face datasets files and the packaged Rotten Tomatoes ------------------------------


def test_sst2_from_a_parquet_mirror(tmp_path):
    import pandas as pd

    mirror = tmp_path / "glue" / "sst2"
    mirror.mkdir(parents=True)
    pd.DataFrame({"sentence": ["a gem", "dull , dull", "fine work"], "label": [1, 0, 1], "idx": [0, 1, 2]}).to_parquet(
        mirror / "train-00000-of-00001.parquet"
    )
    pd.DataFrame({"sentence": ["not good"], "label": [0], "idx": [0]}).to_parquet(mirror / "validation-00000-of-00001.parquet")
    pd.DataFrame({"sentence": ["hidden"], "label": [-1], "idx": [0]}).to_parquet(mirror / "test-00000-of-00001.parquet")
    paths = fetch_dataset("sst2", tmp_path / "data", str(mirror))
    assert [p.name for p in paths] == ["train.csv", "test.csv"]
    from eenet.data import read_text_csv

    texts, labels = read_text_csv(paths[0])
    assert texts == ["a gem", "dull , dull", "fine work"] and labels.tolist() == [1, 0, 1]
    assert read_text_csv(paths[1])[0] == ["not good"]  # GLUE dev is the test split (GLUE test has no labels)
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".")]  # the HF cache is gone


def test_ag_news_from_a_csv_mirror_and_bad_labels(tmp_path):
    mirror = tmp_path / "ag"
    mirror.mkdir()
    (mirror / "train.csv").write_text('text,label\n"Stocks, bonds fall",2\nGoal!,1\n')
    (mirror / "test.csv").write_text("text,label\nElection day,0\n")
    fetch_dataset("ag_news", tmp_path / "data", str(mirror))
    from eenet.data import read_text_csv

    assert read_text_csv(tmp_path / "data" / "train.csv")[0] == ["Stocks, bonds fall", "Goal!"]
    (mirror / "test.csv").write_text("text,label\nElection day,7\n")
    with pytest.raises(ValueError, match="label 7 outside 0..3"):
        fetch_dataset("ag_news", tmp_path / "data2", str(mirror))
    with pytest.raises(FileNotFoundError, match="no train"):
        fetch_dataset("ag_news", tmp_path / "data3", str(tmp_path / "empty"))


def test_hub_unreachable_says_how_to_work_offline(tmp_path, monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # the libraries read the variables once, when first imported (here by an earlier test, perhaps online): without
    # these the load went to the network (23 s of timeouts without internet, `pytest` run outside make)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="could not load fancyzhx/ag_news from the hub .*set datasets.ag_news.mirror"):
        fetch_dataset("ag_news", tmp_path / "data", None)
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]


def test_rotten_tomatoes_from_the_package_tokenised_with_masks(tmp_path):
    from eenet.models import text_tokenizer

    paths = fetch_dataset("rotten_tomatoes", tmp_path / "data", None)
    rows = [list(csv.DictReader(open(p, newline=""))) for p in paths]
    assert (len(rows[0]), len(rows[1])) == (10_752, 2_000)
    assert not {r["text"] for r in rows[0]} & {r["text"] for r in rows[1]}  # no snippet in both
    assert {r["label"] for r in rows[1]} == {"0", "1"}
    assert (
        fetch_dataset("rotten_tomatoes", tmp_path / "again", None)
        and (tmp_path / "again" / "test.csv").read_bytes() == paths[1].read_bytes()
    )
    split = open_split("rotten_tomatoes", tmp_path / "data", "test", tokenizer=text_tokenizer({}, "minilm_3"), max_length=32)
    x = split.inputs(torch.arange(8), torch.device("cpu"))
    lengths = x["attention_mask"].sum(1)
    assert x["input_ids"].shape[1] == int(lengths.max()) <= 32  # a batch is cut to its longest snippet
    assert bool(((x["input_ids"] == 0) == (x["attention_mask"] == 0)).all())  # padding exactly where the mask is 0


def test_rotten_tomatoes_source_is_checksummed(tmp_path):
    (tmp_path / "rotten_tomatoes_corpus_full.csv.bz2").write_bytes(b"BZh9 not the file")
    with pytest.raises(ChecksumError, match="sha256 is"):
        fetch_dataset("rotten_tomatoes", tmp_path / "data", str(tmp_path))
    assert not (tmp_path / "data" / "train.csv").exists()
