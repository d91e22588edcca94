"""summary.csv's measured columns and the figures' x-axis."""

from __future__ import annotations

import pytest

from eenet.analysis.plotting import add_measured, plot_curve, plot_runtime


def runtime_row(method: str, budget: str, batch: int, ms: float, simulated: float = 1.0) -> dict[str, str]:
    return {"method": method, "budget_value": budget, "batch_size": str(batch), "samples": "100", "measured_ms": str(ms),
            "measured_q1": str(0.9 * ms), "measured_q3": str(1.1 * ms), "measured_vs_simulated": str(ms / simulated),
            "speedup_vs_full": str(2.0 / ms), "simulated_ms": str(simulated)}  # fmt: skip


def test_add_measured_joins_on_method_and_budget_and_leaves_the_rest():
    rows = [
        {"method": "maxpred", "budget_value": 0.5, "test_cost_ms": 1.0, "test_accuracy": 0.8},
        {"method": "maxpred", "budget_value": 0.8, "test_cost_ms": 1.6, "test_accuracy": 0.9},
        {"method": "oracle", "budget_value": 0.5, "test_cost_ms": 1.0, "test_accuracy": 0.95},
        {"method": "static_exit0", "test_cost_ms": 0.5, "test_accuracy": 0.7},
    ]
    runtime = [runtime_row("maxpred", "0.5", 1, 1.2), runtime_row("maxpred", "0.5", 64, 0.3), runtime_row("maxpred", "0.8", 1, 1.7),
               runtime_row("static_exit0", "", 1, 0.55)]  # fmt: skip
    add_measured(rows, runtime)
    assert rows[0]["measured_ms"] == 1.2 and rows[0]["measured_batch_ms"] == 0.3 and rows[0]["measured_batch_size"] == 64
    assert rows[0]["measured_samples"] == 100 and rows[0]["speedup_vs_full"] == pytest.approx(2.0 / 1.2)
    assert rows[1]["measured_ms"] == 1.7 and "measured_batch_ms" not in rows[1]
    assert "measured_ms" not in rows[2]  # the oracle reads labels: never run as inference
    assert rows[3]["measured_ms"] == 0.55


def test_figures_are_written_with_either_axis_and_a_wrong_axis_is_refused(tmp_path, monkeypatch):
    import matplotlib.image

    import eenet.analysis.plotting as plotting

    figures = []
    save = plotting.save_figure
    monkeypatch.setattr(plotting, "save_figure", lambda fig, paths: figures.append(fig) or save(fig, paths))
    rows = [{"method": "maxpred", "budget_value": b, "test_cost_ms": c, "test_accuracy": a, "measured_ms": 1.1 * c}
            for b, c, a in [(0.5, 1.0, 0.8), (0.8, 1.6, 0.9)]]  # fmt: skip
    for axis, xs in (("simulated", [1.0, 1.6]), ("measured", [1.1, 1.76])):
        plot_curve(rows, "t", "c", [str(tmp_path / f"{axis}.png")], None, axis)
        # the PNG holds a figure of the plotting size (6.4 x 4.6 in) with something drawn in colour on white
        image = matplotlib.image.imread(tmp_path / f"{axis}.png")
        assert image.shape[0] / image.shape[1] == pytest.approx(4.6 / 6.4, abs=0.01) and image.shape[1] >= 320
        rgb = image[..., :3]
        assert (rgb == 1.0).all(-1).mean() > 0.5  # mostly white background
        assert (rgb.max(-1) - rgb.min(-1) > 0.3).any()  # and coloured pixels: the method's line
        # the method's line runs through its rows at the x of the chosen axis
        (line,) = [ln for ln in figures[-1].axes[0].get_lines() if ln.get_label().startswith("MaxPred")]
        assert list(line.get_xdata()) == pytest.approx(xs) and list(line.get_ydata()) == pytest.approx([80.0, 90.0])
    with pytest.raises(ValueError, match="x_axis must be 'simulated' or 'measured'"):
        plot_curve(rows, "t", "c", [str(tmp_path / "x.png")], None, "flops")
    plot_runtime([runtime_row("maxpred", "0.5", 1, 1.2), runtime_row("maxpred", "0.5", 64, 0.3)], "t", "c", [str(tmp_path / "r.pdf")])
    assert (tmp_path / "r.pdf").read_bytes()[:4] == b"%PDF"


def test_the_plain_network_is_copied_into_the_summary_and_drawn_on_the_curve(tmp_path, monkeypatch):
    import eenet.analysis.plotting as plotting

    rows = [{"method": "maxpred", "budget_value": 0.5, "test_cost_ms": 1.0, "test_accuracy": 0.8}]
    add_measured(rows, [{**runtime_row("maxpred", "0.5", 1, 1.2), "plain_ms": "1.5", "speedup_vs_plain": str(1.5 / 1.2)}])
    assert rows[0]["plain_ms"] == 1.5 and rows[0]["speedup_vs_plain"] == pytest.approx(1.25)
    figures = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, paths: figures.append(fig))
    plot_curve(rows, "t", "c", [str(tmp_path / "c.png")], None, "simulated", None, 1.5)
    lines = [ln for ln in figures[0].axes[0].get_lines() if "plain network" in ln.get_label()]
    assert len(lines) == 1 and list(lines[0].get_xdata()) == [1.5, 1.5]
    plot_curve(rows, "t", "c", [str(tmp_path / "c.png")])  # no plain network (a cost.csv written before it): no line
    assert not [ln for ln in figures[1].axes[0].get_lines() if "plain network" in ln.get_label()]
    # runtime.pdf: the speed-up axis is over the plain network when runtime.csv has it
    plot_runtime([{**runtime_row("maxpred", "0.5", 1, 1.2), "plain_ms": "1.5", "speedup_vs_plain": "1.25"}], "t", "c", ["r.pdf"])
    assert figures[2].axes[1].get_ylabel() == "speed-up over the plain network (x)"
    assert [float(v) for v in figures[2].axes[1].collections[0].get_offsets()[:, 1]] == [1.25]
