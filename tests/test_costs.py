"""Latency tables: the spread check that keeps a noisy measurement out of the budgets."""

import pytest
from helpers import FakeClock

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
    """On a clock where each call takes what the test says: two of three passes are hit by a 60 ms burst, each in
    another chunk. The median *pass* would include one (5 ms a sample), the per-chunk median leaves both out (2 ms);
    the spread of whole passes shows them, and a run that is really slower stays slower."""
    import torch

    from eenet.measure.costs import time_per_sample

    clock = FakeClock()
    calls = {"n": 0}

    def bursty(_batch):
        calls["n"] += 1
        # calls 1-20: warm-up; then per chunk of 10 batches, 3 repeats (interleaved with `steady`): pass 0 of chunk 0 is
        # calls 21-30, pass 1 of chunk 1 is calls 61-70 -> one burst in each
        clock.advance(0.062 if calls["n"] in (25, 65) else 0.002)

    def steady(_batch):
        clock.advance(0.004)

    batches = [torch.zeros(1, 1)] * 20
    out = time_per_sample({"bursty": bursty, "steady": steady}, batches, torch.device("cpu"), warmup=1, repeats=3, chunk=10, clock=clock)
    assert calls["n"] == 20 + 2 * 3 * 10 and clock.reads == 2 * 2 * 3 * 2  # two reads around each timed chunk
    # chunk medians 20 ms + 20 ms over 20 samples; the passes per sample: (80 + 20) / 20, (20 + 80) / 20, (20 + 20) / 20
    assert out["bursty"] == pytest.approx({"ms": 2.0, "ms_q1": 2.0, "ms_q3": 5.0}, rel=1e-12)
    assert out["steady"] == pytest.approx({"ms": 4.0, "ms_q1": 4.0, "ms_q3": 4.0}, rel=1e-12)


def test_time_per_sample_reads_the_clock_around_the_chunk_not_around_each_batch():
    """The clock's own cost (here 1 ms a read) enters once per timed chunk: 10 batches of 3 samples that take nothing
    cost (1 ms) / 30 samples, not 10 ms."""
    import torch

    from eenet.measure.costs import time_per_sample

    clock = FakeClock(tick=0.001)
    out = time_per_sample({"free": lambda b: None}, [torch.zeros(3, 1)] * 10, torch.device("cpu"), warmup=0, repeats=3, clock=clock)
    assert out["free"] == pytest.approx({"ms": 1 / 30, "ms_q1": 1 / 30, "ms_q3": 1 / 30}, rel=1e-12)
    assert clock.reads == 6


def test_the_timers_default_clock_is_perf_counter():
    import inspect
    import time

    from eenet.measure.costs import time_per_sample
    from eenet.measure.overhead import decision_overhead

    for fn in (time_per_sample, decision_overhead):
        assert inspect.signature(fn).parameters["clock"].default is time.perf_counter
