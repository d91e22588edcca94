"""Latency tables: the spread check that keeps a noisy measurement out of the budgets."""

import pytest

from eenet.measure.costs import NoisyMeasurementError, check_spread, cost_table


def lat(ms: float, q1: float, q3: float) -> dict:
    return {"ms": ms, "ms_q1": q1, "ms_q3": q3}


def test_spread_within_the_limit_passes_and_is_returned():
    spreads = check_spread([lat(1.0, 0.95, 1.05), lat(2.0, 1.9, 2.2)], 0.2)
    assert spreads == pytest.approx([0.1, 0.15])


def test_spread_above_the_limit_names_the_exits():
    with pytest.raises(NoisyMeasurementError, match=r"exit 1: 0.60, above profile.max_spread = 0.5") as err:
        check_spread([lat(1.0, 0.95, 1.05), lat(2.0, 1.6, 2.8)], 0.5)
    assert "exit 0" not in str(err.value)


def test_cost_table_is_monotone_and_keeps_the_raw_median():
    rows = cost_table([lat(1.0, 0.9, 1.1), lat(0.9, 0.8, 1.0), lat(2.0, 1.9, 2.1)], [10, 20, 30], {"device": "cpu"})
    assert [r["ms"] for r in rows] == [1.0, 1.0, 2.0] and [r["ms_raw"] for r in rows] == [1.0, 0.9, 2.0]


def test_time_per_sample_leaves_out_a_burst_of_load_in_any_chunk():
    """Two of three passes are hit by a 60 ms burst, each in another chunk: the median *pass* would include one,
    the per-chunk median leaves both out. A run that is really slower stays slower."""
    import time

    import torch

    from eenet.measure.costs import time_per_sample

    calls = {"n": 0}

    def bursty(_batch):
        calls["n"] += 1
        # calls 1-20: warm-up; then per chunk of 10 batches, 3 repeats (interleaved with `steady`)
        # pass 0 of chunk 0 is calls 21-30, pass 1 of chunk 1 is calls 21 + 30 + 10 ... -> one call in each
        time.sleep(0.062 if calls["n"] in (25, 65) else 0.002)

    def steady(_batch):
        time.sleep(0.004)

    batches = [torch.zeros(1, 1)] * 20
    out = time_per_sample({"bursty": bursty, "steady": steady}, batches, torch.device("cpu"), warmup=1, repeats=3, chunk=10)
    assert calls["n"] == 20 + 2 * 3 * 10
    assert 1.9 < out["bursty"]["ms"] < 2.6, out  # 2 ms per sample; with either burst it would be >= 5
    assert out["bursty"]["ms_q3"] > 4.0  # the spread of whole passes shows the bursts
    assert 3.9 < out["steady"]["ms"] < 4.8 and out["steady"]["ms"] > out["bursty"]["ms"]
