import math

import torch

from eenet.schedulers.scores import entropy_score, maxpred


def test_maxpred_is_largest_probability():
    p = torch.tensor([[0.1, 0.7, 0.2], [1 / 3, 1 / 3, 1 / 3]])
    assert torch.allclose(maxpred(p), torch.tensor([0.7, 1 / 3]))


def test_entropy_score_extremes_and_value():
    one_hot = torch.tensor([0.0, 1.0, 0.0, 0.0])
    uniform = torch.full((4,), 0.25)
    assert entropy_score(one_hot).item() == 1.0
    assert abs(entropy_score(uniform).item()) < 1e-6
    p = torch.tensor([0.5, 0.5, 0.0, 0.0])
    assert math.isclose(entropy_score(p).item(), 1 - math.log(2) / math.log(4), rel_tol=1e-5)


def test_scores_keep_leading_shape():
    p = torch.softmax(torch.randn(3, 5, 7), dim=-1)
    assert maxpred(p).shape == (3, 5) and entropy_score(p).shape == (3, 5)
    # a more peaked distribution scores higher on both
    flat, peaked = torch.softmax(torch.tensor([1.0, 0.5, 0.0]), 0), torch.softmax(torch.tensor([5.0, 0.5, 0.0]), 0)
    assert maxpred(peaked) > maxpred(flat) and entropy_score(peaked) > entropy_score(flat)
