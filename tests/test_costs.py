"""Latency tables: the spread check that keeps a noisy measurement out of the budgets."""

import pytest

from eenet.costs import NoisyMeasurementError, check_spread, cost_table


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
