"""Datasets and backbones of your own: image folders, tables, Hugging Face files; torchvision and Hugging Face
backbones with exits where the config says; the errors that name the key and the fix."""

from __future__ import annotations

import csv
import hashlib
import tarfile

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import CLASSES, make_image_folder, make_texts, make_tiny_bert

from eenet.catalog import resolve_datasets
from eenet.data import DatasetSpec, open_split, raw_paths, read_text_csv
from eenet.data.fetch import ChecksumError, prepare_dataset
from eenet.models import build_model, exit_points, text_tokenizer
from eenet.pipeline.preflight import check_benchmark, check_dataset

CPU = torch.device("cpu")


def spec_of(name: str, **entry) -> DatasetSpec:
    """A dataset declared as in the config (defaults filled in by the catalog)."""
    resolved = resolve_datasets({name: entry})[name]
    return DatasetSpec.from_entry(name, resolved)


# --- image folders ---------------------------------------------------------------------------------------


def test_image_folder_with_train_and_test_is_indexed_with_classes_size_and_normalisation(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", {"train": 4, "test": 2}, size=16)
    spec = spec_of("shapes", kind="imagefolder", path=str(folder))
    paths, done = prepare_dataset(spec, tmp_path / "data")
    assert [p.name for p in paths] == ["train.csv", "test.csv"]
    assert done.classes == CLASSES and done.num_classes == 3 and done.image_size == 16
    rows = list(csv.DictReader(open(paths[0], newline="")))
    assert len(rows) == 12 and [int(r["label"]) for r in rows] == [0] * 4 + [1] * 4 + [2] * 4
    assert all(f"/train/{CLASSES[int(r['label'])]}/" in r["path"] for r in rows)
    # the normalisation is that of the training images' pixels
    from PIL import Image

    pixels = np.stack([np.asarray(Image.open(r["path"])) for r in rows]).reshape(-1, 3) / 255.0
    assert np.allclose(done.mean, pixels.mean(0), atol=1e-5) and np.allclose(done.std, pixels.std(0), atol=1e-5)
    train = open_split(done, tmp_path / "data", "train", augment_pad=2, augment_flip=True, workers=0)
    x = train.inputs(torch.arange(12), CPU)
    assert x.shape == (12, 3, 16, 16)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)  # normalised with its own statistics
    batches = list(train.batches(5, CPU, shuffle=True, generator=torch.Generator().manual_seed(0), augment=True))
    assert [b.shape[0] for b, _ in batches] == [5, 5, 2] and sorted(torch.cat([y for _, y in batches]).tolist()) == sorted(
        train.labels.tolist()
    )
    assert open_split(done, tmp_path / "data", "test").labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_image_folder_without_a_test_folder_is_split_with_a_seed(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", {"": 10}, size=8)
    spec = spec_of("shapes", kind="imagefolder", path=str(folder), test_size=0.2, test_seed=3)
    paths, _ = prepare_dataset(spec, tmp_path / "a")
    again, _ = prepare_dataset(spec, tmp_path / "b")
    train, test = (list(csv.DictReader(open(p, newline=""))) for p in paths)
    assert (len(train), len(test)) == (24, 6)
    assert not {r["path"] for r in train} & {r["path"] for r in test}
    assert paths[1].read_bytes() == again[1].read_bytes()  # the same seed, the same split


def test_image_folder_archive_from_a_url_is_checked_and_extracted(tmp_path):
    folder = make_image_folder(tmp_path / "src" / "shapes", {"train": 2, "test": 1}, size=8)
    archive = tmp_path / "shapes.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="shapes")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    paths, done = prepare_dataset(spec_of("shapes", kind="imagefolder", url=archive.as_uri(), sha256=sha), tmp_path / "data")
    rows = list(csv.DictReader(open(paths[0], newline="")))
    assert len(rows) == 6 and all(r["path"].startswith("images/shapes/train/") for r in rows)  # relative: moves with data/
    assert open_split(done, tmp_path / "data", "train").inputs(torch.arange(6), CPU).shape == (6, 3, 8, 8)
    assert raw_paths(done, tmp_path / "data")[-1] == tmp_path / "data" / "images"  # DVC tracks the extracted tree
    with pytest.raises(ChecksumError, match=f"sha256 is [0-9a-f]{{64}}, expected {'0' * 64}"):
        prepare_dataset(spec_of("shapes", kind="imagefolder", url=archive.as_uri(), sha256="0" * 64), tmp_path / "bad")
    assert not [p for p in (tmp_path / "bad").rglob("*") if p.is_file()]


def test_image_folder_errors_name_the_folder_and_the_key(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", {"train": 2, "test": 1}, size=8, odd={"train/square/1": (8, 12)})
    entry = resolve_datasets({"shapes": {"kind": "imagefolder", "path": str(folder)}})["shapes"]
    with pytest.raises(ValueError, match=r"different or non-square sizes .*circle/0.png is 8x8, .*square/1.png is 8x12.*transform: resize"):
        check_dataset("shapes", entry)
    resized = resolve_datasets({"shapes": {"kind": "imagefolder", "path": str(folder), "transform": "resize", "image_size": 8}})["shapes"]
    check_dataset("shapes", resized)  # resizing accepts every size
    _, done = prepare_dataset(DatasetSpec.from_entry("shapes", resized), tmp_path / "data")
    assert open_split(done, tmp_path / "data", "train").inputs(torch.arange(6), CPU).shape == (6, 3, 8, 8)
    (folder / "test" / "stripes").joinpath("0.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"class folder .*test/stripes has no images"):
        check_dataset("shapes", resized)
    with pytest.raises(FileNotFoundError, match=r"datasets.gone.path: .* is not a directory"):
        check_dataset("gone", resolve_datasets({"gone": {"kind": "imagefolder", "path": str(tmp_path / "nowhere")}})["gone"])
    with pytest.raises(ValueError, match="needs `kind:` one of imagefolder, table, huggingface"):
        resolve_datasets({"mine": {"path": str(folder)}})
    with pytest.raises(ValueError, match="the built-in cifar10 is of kind cifar"):
        resolve_datasets({"cifar10": {"kind": "imagefolder", "path": str(folder)}})


# --- tables ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_table_of_texts_with_string_labels(tmp_path, fmt):
    texts, labels = make_texts(50)
    df = pd.DataFrame({"review": texts, "mood": labels})
    train = tmp_path / f"reviews.{fmt}"
    {
        "csv": lambda: df.to_csv(train, index=False),
        "parquet": lambda: df.to_parquet(train),
        "jsonl": lambda: df.to_json(train, orient="records", lines=True),
    }[fmt]()
    spec = spec_of("reviews", kind="table", train=str(train), text_column="review", label_column="mood", test_size=10)
    check_dataset(
        "reviews",
        resolve_datasets({"reviews": {"kind": "table", "train": str(train), "text_column": "review", "label_column": "mood"}})["reviews"],
    )
    paths, done = prepare_dataset(spec, tmp_path / "data")
    assert done.classes == ("bad", "good", "meh")  # sorted distinct labels
    (tr_texts, tr_labels), (te_texts, te_labels) = read_text_csv(paths[0]), read_text_csv(paths[1])
    assert (len(tr_texts), len(te_texts)) == (40, 10)
    index = {t: y for t, y in zip(texts, labels, strict=True)}
    assert all(
        done.classes[int(y)] == index[t] for t, y in zip(tr_texts + te_texts, torch.cat([tr_labels, te_labels]).tolist(), strict=True)
    )


def test_table_labels_and_columns_are_checked(tmp_path):
    texts, labels = make_texts(20)
    train, test = tmp_path / "train.csv", tmp_path / "test.parquet"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(train, index=False)
    pd.DataFrame({"text": ["so so", "lovely"], "label": ["meh", "great"]}).to_parquet(test)
    declared = {"kind": "table", "train": str(train), "test": str(test), "classes": ["bad", "meh", "good"]}
    with pytest.raises(
        ValueError,
        match=r"datasets.reviews.test \(.*test.parquet\): label 'great' is not one of the declared classes \['bad', 'meh', 'good'\]",
    ):
        check_dataset("reviews", resolve_datasets({"reviews": declared})["reviews"])
    pd.DataFrame({"text": ["so so", "lovely"], "label": ["meh", "good"]}).to_parquet(test)
    _, done = prepare_dataset(spec_of("reviews", **declared), tmp_path / "data")
    assert done.classes == ("bad", "meh", "good") and read_text_csv(tmp_path / "data" / "test.csv")[1].tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"has no column 'sentence' \(datasets.reviews.text_column\); its columns: text, label"):
        check_dataset("reviews", resolve_datasets({"reviews": {**declared, "text_column": "sentence"}})["reviews"])


def test_huggingface_files_of_your_own_with_named_columns(tmp_path):
    texts, labels = make_texts(30)
    (tmp_path / "hf").mkdir()
    pd.DataFrame({"body": texts, "tag": labels}).to_parquet(tmp_path / "hf" / "train-00000-of-00001.parquet")
    spec = spec_of(
        "tags",
        kind="huggingface",
        path=str(tmp_path / "hf"),
        splits={"train": "train"},
        text_column="body",
        label_column="tag",
        test_size=0.3,
    )
    paths, done = prepare_dataset(spec, tmp_path / "data")
    assert done.classes == ("bad", "good", "meh") and [len(read_text_csv(p)[0]) for p in paths] == [21, 9]


def test_a_benchmark_names_a_known_dataset_and_a_model_for_its_data():
    datasets = resolve_datasets({})
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; built-in: ag_news, cifar10"):
        check_benchmark("b", {"dataset": "mnist", "arch": "small_cnn_3"}, datasets)
    with pytest.raises(ValueError, match="torchvision:resnet18 reads images but dataset sst2 holds texts"):
        check_benchmark("b", {"dataset": "sst2", "arch": "torchvision:resnet18"}, datasets)


def test_the_reliability_studys_policies_are_known_methods_alone_or_combined():
    datasets = resolve_datasets({})
    b = {"dataset": "fashion_mnist", "arch": "small_cnn_3", "reliability": {"methods": ["maxpred", "ztw_ens+maxpred_guard"]}}
    check_benchmark("b", b, datasets)
    b["reliability"]["methods"].append("ztw_ens+maxpredd")
    with pytest.raises(ValueError, match=r"benchmarks.b.reliability.methods: 'ztw_ens\+maxpredd': unknown method 'maxpredd'"):
        check_benchmark("b", b, datasets)
    b["reliability"]["methods"][-1] = "zwt+maxpred"
    with pytest.raises(ValueError, match=r"'zwt\+maxpred': unknown combiner 'zwt'"):
        check_benchmark("b", b, datasets)


# --- backbones ---------------------------------------------------------------------------------------------


def test_torchvision_resnet18_with_an_exit_after_each_stage():
    import torchvision

    torch.manual_seed(0)
    net = build_model("torchvision:resnet18", 3, 3, exits=["layer1", "layer2", "layer3", "layer4"])
    x = torch.randn(2, 3, 16, 16)
    net.eval()
    outs = net(x)
    assert net.num_exits == 4 and [o.shape for o in outs] == [(2, 3)] * 4
    assert [o.shape for o in net.forward_until(x, 1)] == [(2, 3)] * 2
    # the stages are the torchvision model's own modules: stage 0 = conv1 .. layer1
    assert isinstance(net.stages[0][0], torch.nn.Conv2d) and isinstance(net.stages[0][-1], torch.nn.Sequential)
    assert isinstance(net.stages[3][0][0], torchvision.models.resnet.BasicBlock)
    assert "layer3.1" in exit_points(torchvision.models.resnet18())


def test_torchvision_weights_are_loaded_before_the_model_is_cut(tmp_path):
    import torchvision

    torch.manual_seed(1)
    source = torchvision.models.resnet18()
    torch.save(source.state_dict(), tmp_path / "r18.pt")
    net = build_model("torchvision:resnet18", 3, 3, exits=["layer2", "layer4"], weights=str(tmp_path / "r18.pt"))
    assert torch.equal(net.stages[0][0].weight, source.conv1.weight) and torch.equal(
        net.stages[1][-1][1].conv2.weight, source.layer4[1].conv2.weight
    )
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "r34.pt")
    with pytest.raises(ValueError, match="are not weights of this model"):
        build_model("torchvision:resnet18", 3, 3, exits=["layer4"], weights=str(tmp_path / "r34.pt"))


@pytest.mark.parametrize(
    ("exits", "message"),
    [
        (
            ["layer1", "layer5"],
            r"no module 'layer5' to put an exit after \(arch_kwargs.exits\); valid: conv1, bn1, relu, maxpool, layer1, layer1.0",
        ),
        (["layer3", "layer1"], "must follow the order the modules run in"),
        (["layer4", "fc"], r"its forward is not the chain of its modules up to 'fc'"),
    ],
)
def test_torchvision_exit_errors_list_what_is_valid(exits, message):
    from eenet.models.backbones import check_torchvision

    with pytest.raises(ValueError, match=message):
        build_model("torchvision:resnet18", 3, 3, exits=exits)
    if "forward" not in message:  # the check before any job (on the meta device) finds the same
        with pytest.raises(ValueError, match=message):
            check_torchvision("resnet18", exits=exits)


def test_torchvision_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="torchvision has no classification model 'resnet19'; e.g. resnet.*"):
        build_model("torchvision:resnet19", 3, 3, exits=["layer1"])
    with pytest.raises(ValueError, match="reads RGB images .* have 1"):
        build_model("torchvision:resnet18", 3, 1, exits=["layer1"])


def test_vision_transformer_exits_read_the_class_token():
    import torchvision

    net = build_model(
        "torchvision:vit_b_16", 4, 3, exits=["encoder.layers.encoder_layer_1", "encoder.layers.encoder_layer_11"], kwargs={"image_size": 32}
    )
    assert [o.shape for o in net.eval()(torch.randn(2, 3, 32, 32))] == [(2, 4), (2, 4)]
    assert len(net.stages[1]) == 10 and all(isinstance(m, torchvision.models.vision_transformer.EncoderBlock) for m in net.stages[1])
    assert not net.channels_last_on_cuda


def test_huggingface_backbone_from_a_local_directory(tmp_path):
    model_dir = make_tiny_bert(tmp_path / "tiny-bert", layers=2)
    arch = f"huggingface:{model_dir}"
    net = build_model(arch, 3, exit_layers=[1, 2], random_init=True)
    tok = text_tokenizer({}, arch)
    enc = tok(["great fine", "awful dull grim"], padding=True, return_tensors="pt")
    outs = net.eval()({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    assert [o.shape for o in outs] == [(2, 3), (2, 3)]
    from eenet.models.backbones import check_huggingface

    with pytest.raises(ValueError, match=r"exit_layers must increase from >= 1 to the last layer \(2\), got \[1, 3\]"):
        check_huggingface(str(model_dir), exit_layers=[1, 3])
    with pytest.raises(FileNotFoundError, match="no such directory"):
        check_huggingface(str(tmp_path / "nothing"), exit_layers=[1])


def test_compiled_timing_takes_the_benchmarks_own_policies_on_an_image_model():
    datasets = resolve_datasets({})
    b = {"dataset": "fashion_mnist", "arch": "small_cnn_3", "methods": ["maxpred", "oracle"], "combiners": ["ztw_ens"],
         "compiled": {"methods": ["maxpred", "ztw_ens+maxpred"]}}  # fmt: skip
    check_benchmark("b", b, datasets)
    for method, says in (("entropy", "'entropy' is not one of its policies"), ("ztw_ens+oracle", "'ztw_ens\\+oracle' is not one")):
        with pytest.raises(ValueError, match=f"benchmarks.b.compiled.methods: {says}"):
            check_benchmark("b", {**b, "compiled": {"methods": [method]}}, datasets)
    text = {"dataset": "sst2", "arch": "minilm_3", "methods": ["maxpred"], "compiled": {"methods": ["maxpred"]}}
    with pytest.raises(ValueError, match="minilm_3 is a text model; compiled timing takes image models only"):
        check_benchmark("b", text, datasets)
