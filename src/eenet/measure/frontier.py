"""The cost of the plain-network frontier's networks, timed in one run: the multi-exit network cut after each exit
(that exit's head only, :func:`eenet.measure.costs.run_cut`) and the plain networks trained alone
(:func:`eenet.models.base.single_exit`: the first stages and one head, or the whole network at another width), timed
interleaved by :func:`eenet.measure.costs.time_per_sample` on the batches cost.csv is timed on, so that their ratios
are of the same run -> frontier.csv (:mod:`eenet.analysis.frontier` reads it).

A network trained alone runs what the cut of the same depth runs (its one stage is the cut's stages in order, its head
the cut's head): :func:`run_cut` at its only exit, the same code path, so that only its weights differ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from eenet.inputs import Inputs, first_tensor
from eenet.measure.costs import check_spread, profile_batches, profile_info, run_cut, time_per_sample

if TYPE_CHECKING:
    from eenet.data.spec import Split
    from eenet.models import MultiExitNetwork

__all__ = ["FRONTIER_COST_FIELDS", "count_cut_flops", "cut_parameters", "time_networks", "measure_frontier"]

FRONTIER_COST_FIELDS = ["network", "kind", "exit", "ms", "ms_q1", "ms_q3", "flops", "parameters"]
"""Columns of frontier.csv (:func:`measure_frontier`), before the measurement's own (batch size, samples, repeats,
threads, device, versions): one row per network of the frontier, ``cut<k>`` (``kind`` ``cut``: the multi-exit network
cut after exit ``k``, ``exit`` = ``k``; the last is the plain network) or a network trained alone (``kind`` ``depth``
or ``width``, named as :func:`eenet.pipeline.planning.frontier_networks` names it); ms per sample at the profile's
batch size (the mean over samples, quartiles of whole passes: :func:`eenet.measure.costs.time_per_sample`), FLOPs per
sample and the parameters it runs."""


@torch.inference_mode()
def count_cut_flops(model: MultiExitNetwork, sample: Inputs, exit_index: int) -> int:
    """FLOPs per sample of ``model`` cut after exit ``exit_index`` (:func:`run_cut`: stages ``0..exit_index`` and that
    exit's head only)."""
    from torch.utils.flop_counter import FlopCounterMode  # imported here, as eenet.measure.costs does

    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        run_cut(model, sample, exit_index)
    return int(counter.get_total_flops() // first_tensor(sample).shape[0])


def cut_parameters(model: MultiExitNetwork, exit_index: int) -> int:
    """Parameters of ``model`` cut after exit ``exit_index``: stages ``0..exit_index`` and that exit's head."""
    modules = [*model.stages[: exit_index + 1], model.heads[exit_index]]
    return sum(p.numel() for m in modules for p in m.parameters())


def _networks(model: MultiExitNetwork, networks: Mapping[str, MultiExitNetwork]) -> dict[str, tuple[MultiExitNetwork, int]]:
    """Name -> (network, the exit it is cut after): ``cut<k>`` of ``model``, then each of ``networks`` at its last exit."""
    nets = {f"cut{k}": (model.eval(), k) for k in range(model.num_exits)}
    for name, net in networks.items():
        if name in nets:
            raise ValueError(f"a network trained alone cannot be named {name!r}, the name of a cut")
        nets[name] = (net.eval(), net.num_exits - 1)
    return nets


def time_networks(
    model: MultiExitNetwork,
    networks: Mapping[str, MultiExitNetwork],
    batches: list[Inputs],
    device: torch.device,
    warmup: int = 1,
    repeats: int = 5,
) -> dict[str, dict[str, float]]:
    """Name -> ``ms``, ``ms_q1``, ``ms_q3`` per sample of ``model`` cut after each exit (``cut<k>``) and of each of
    ``networks`` (name -> a network trained alone, run cut after its last exit), all timed in one interleaved run
    (:func:`eenet.measure.costs.time_per_sample`) over ``batches``."""
    nets = _networks(model, networks)
    runs: dict[str, Callable[[Any], object]] = {name: partial(run_cut, net, exit_index=k) for name, (net, k) in nets.items()}
    return time_per_sample(runs, batches, device, warmup, repeats)


def measure_frontier(
    model: MultiExitNetwork,
    networks: Mapping[str, MultiExitNetwork],
    test: Split,
    prof: Mapping[str, Any],
    device: torch.device,
    meta: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[float]]:
    """frontier.csv's rows (:data:`FRONTIER_COST_FIELDS`): ``model``'s cuts and ``networks`` (name -> a network
    trained alone) timed in one run (:func:`time_networks`) on the batches cost.csv is timed on
    (:func:`eenet.measure.costs.profile_batches` of ``test`` with the benchmark's ``profile:`` block ``prof``), with
    their FLOPs and parameters; ``meta`` (device, versions) joins every row. Returns the rows (the cuts first) and each
    timing's spread (IQR / median).

    Raises:
        NoisyMeasurementError: a timing spreads more than ``prof["max_spread"]`` (the message names the network).
    """
    batches = profile_batches(test, prof, device)
    timing = time_networks(model, networks, batches, device, prof["warmup"], prof["repeats"])
    nets = _networks(model, networks)
    spreads = check_spread([timing[name] for name in nets], prof["max_spread"], list(nets))
    one, info = test.inputs(torch.arange(1), device), profile_info(batches, prof, meta)
    rows = []
    for name, (net, k) in nets.items():
        kind = "cut" if net is model else name.rstrip("0123456789.")
        rows.append({
            "network": name, "kind": kind, "exit": k if kind == "cut" else "", **timing[name],
            "flops": count_cut_flops(net, one, k), "parameters": cut_parameters(net, k), **info,
        })  # fmt: skip
    return rows, spreads
