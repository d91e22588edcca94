import pickle

import pytest
import torch

from eenet.io import save_checkpoint
from eenet.models import MODEL_BUILDERS, build_model, load_model, save_model


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
    with pytest.raises(IndexError):
        model.forward_until(torch.randn(1, 1, 28, 28), 3)


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="unknown architecture 'nope'.*small_cnn_3"):
        build_model("nope", 10, 1)
    assert "small_cnn_3" in MODEL_BUILDERS


def test_save_and_load_round_trip(model, tmp_path):
    path = tmp_path / "model.pt"
    save_model(str(path), model, {"arch": "small_cnn_3", "arch_kwargs": {"width": 8}, "num_classes": 10, "in_channels": 1})
    again, meta = load_model(str(path))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x), again(x), strict=True))
    assert meta["arch_kwargs"] == {"width": 8}


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_checkpoint_with_a_pickle_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": _Payload()}))
    with pytest.raises(ValueError, match="refusing to load"):
        load_model(str(path))
    save_checkpoint(tmp_path / "ok.pt", {"x": torch.ones(2)})  # plain tensors still load
