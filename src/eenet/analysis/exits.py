"""The paper's visual analysis: where test samples leave, how accurate each exit's share is, and which samples
leave where (a grid of images per exit, or sentences per exit for text benchmarks)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import torch

from eenet.data import DatasetSpec
from eenet.schedulers import exit_predictions, scheduler_from_json

__all__ = [
    "EXITS_FIELDS",
    "EXAMPLES_FIELDS",
    "exit_table",
    "pick_examples",
    "shown_policy",
    "examples_caption",
    "raw_samples",
    "plot_examples",
]

EXITS_FIELDS = ["bench", "method", "budget_value", "exit", "samples", "share", "accuracy", "mean_confidence", "exit_accuracy",
                "single_exit_accuracy"]  # fmt: skip
"""Columns of exits.csv: per policy, budget and exit, the test samples that leave there, their share and accuracy,
and the mean max-probability of that exit on them; the accuracy on every test sample of the outputs the policy reads at
that exit (``exit_accuracy``: a combiner's, for ``"<combiner>+<policy>"``) and of the single exit's softmax."""

EXAMPLES_FIELDS = ["bench", "method", "budget_value", "exit", "index", "label", "prediction", "confidence", "text"]
"""Columns of examples.csv: the test samples shown in examples.pdf (``index`` into the test split)."""


def _assign(
    fitted: dict[str, Any], probs: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exits ``[N]`` of a fitted policy and the outputs ``[K, N, C]`` it reads (its combiner's, if it has one)."""
    sched = scheduler_from_json(fitted)
    outs = sched.outputs({"probs": probs, **({} if logits is None else {"logits": logits})})
    return sched.assign(outs, labels), outs  # only the oracle reads the labels


def exit_table(
    bench: str, probs: torch.Tensor, labels: torch.Tensor, fitted: list[dict[str, Any]], logits: torch.Tensor | None = None
) -> list[dict[str, Any]]:
    """Rows of exits.csv (:data:`EXITS_FIELDS`) for every feasible fitted scheduler (its JSON) on the test split
    (``probs [K, N, C]``, ``labels [N]``, raw ``logits [K, N, C]`` for policies with a combiner). An exit no sample
    leaves at has accuracy and confidence empty."""
    rows = []
    n = labels.numel()
    single = (probs.argmax(dim=2) == labels).double().mean(dim=1).tolist()  # [K]
    for f in sorted((f for f in fitted if not f.get("infeasible")), key=lambda f: (f["method"], f["budget_value"])):
        exits, outs = _assign(f, probs, labels, logits)
        conf = outs.max(dim=2).values  # [K, N]
        every = (outs.argmax(dim=2) == labels).double().mean(dim=1).tolist()
        correct = exit_predictions(outs, exits) == labels
        for k in range(probs.shape[0]):
            here = exits == k
            m = int(here.sum())
            rows.append({
                "bench": bench, "method": f["method"], "budget_value": f["budget_value"], "exit": k, "samples": m,
                "share": m / n, "accuracy": correct[here].float().mean().item() if m else "",
                "mean_confidence": conf[k][here].mean().item() if m else "", "exit_accuracy": every[k],
                "single_exit_accuracy": single[k],
            })  # fmt: skip
    return rows


def pick_examples(
    fitted: dict[str, Any], probs: torch.Tensor, labels: torch.Tensor, per_exit: int, logits: torch.Tensor | None = None
) -> list[dict[str, Any]]:
    """Up to ``per_exit`` test samples per exit under one fitted scheduler, the first ones in test order (the test
    split's order is the dataset's, so the choice is reproducible and not cherry-picked): rows of examples.csv
    without ``bench`` and ``text``."""
    exits, probs = _assign(fitted, probs, labels, logits)
    preds = exit_predictions(probs, exits)
    rows = []
    for k in range(probs.shape[0]):
        for i in torch.nonzero(exits == k).flatten()[:per_exit].tolist():
            rows.append({
                "method": fitted["method"], "budget_value": fitted["budget_value"], "exit": k, "index": i,
                "label": int(labels[i]), "prediction": int(preds[i]), "confidence": probs[k, i].max().item(),
            })  # fmt: skip
    return rows


def shown_policy(fitted: list[dict[str, Any]], method: str, budget: Any, bench: str) -> tuple[dict[str, Any], str | None]:
    """The fitted policy whose examples are shown, and a notice when it is not the one asked for: ``examples.method``
    at ``examples.budget`` if that fit is feasible; else the same method at the nearest feasible budget; else another
    method (in the order of ``fitted``) at that budget, else at any budget. A budget can be infeasible on one machine
    and not on another (a policy's own decision work is timed into its costs), and a figure meant to illustrate should
    not stop the chain: the notice says what is shown instead, in the log and the caption. A clear error when no
    policy has a feasible fit at all."""

    def feasible(f: dict[str, Any]) -> bool:
        return not f.get("infeasible")

    def distance(f: dict[str, Any]) -> float:
        try:
            return abs(float(f["budget_value"]) - float(budget))
        except (TypeError, ValueError):
            return float("inf")

    asked = [f for f in fitted if f["method"] == method and str(f["budget_value"]) == str(budget)]
    if asked and feasible(asked[0]):
        return asked[0], None
    same_method = sorted((f for f in fitted if f["method"] == method and feasible(f)), key=distance)
    same_budget = [f for f in fitted if str(f["budget_value"]) == str(budget) and feasible(f)]
    anywhere = sorted((f for f in fitted if feasible(f)), key=distance)
    shown = next(iter(same_method or same_budget or anywhere), None)
    if shown is None:
        raise ValueError(f"examples.method {method!r} at budget {budget}: no policy has a feasible fit in results/{bench}/schedulers/")
    why = "is not fitted" if not asked else "has no feasible fit"
    return shown, (f"examples.method {method!r} at budget {budget} {why}; examples.pdf shows {shown['method']} at budget "
                   f"{shown['budget_value']} instead")  # fmt: skip


def examples_caption(table: list[dict[str, Any]], shown: dict[str, Any], per_exit: int, notice: str | None = None) -> str:
    """The caption of examples.pdf: the policy, its budget, and the share and accuracy of samples at each exit; first
    the ``notice`` of :func:`shown_policy` when it shows another policy than the one asked for."""
    shares = {r["exit"]: r for r in table if r["method"] == shown["method"] and r["budget_value"] == shown["budget_value"]}
    parts = []
    for k, r in sorted(shares.items()):
        at = f" at {100 * r['accuracy']:.1f} % accuracy" if r["samples"] else ""
        parts.append(f"exit {k}: {100 * r['share']:.1f} % of samples{at}")
    summary = ", ".join(parts)
    caption = (
        f"{shown['method']} at budget {shown['budget_value']} ({shown['budget_unit']}): the first {per_exit} test samples in test "
        f"order that leave at each exit; label -> prediction, red when wrong. {summary}."
    )
    return f"{notice}. {caption}" if notice else caption


def raw_samples(dataset: str | DatasetSpec, root: str | Path, indices: list[int]) -> list[torch.Tensor] | list[str]:
    """The test samples at ``indices`` as a person sees them: images ``uint8 [C, H, W]`` (IDX, CIFAR, image folders:
    64 x 64) or the texts (text datasets). ``dataset``: the spec from the download's manifest, or a built-in name.
    Indices are those of the test split (its first ``max_test`` are the same samples)."""
    from eenet.catalog import TEXT_KINDS
    from eenet.data import dataset_spec, decode_rgb, load_images
    from eenet.data.text import read_text_csv

    spec = dataset_spec(dataset)
    if spec.kind in TEXT_KINDS:
        texts, _ = read_text_csv(Path(root) / "test.csv")
        return [texts[i] for i in indices]
    if spec.kind == "imagefolder":
        from torchvision.transforms import v2

        from eenet.data.folders import read_index

        files, _ = read_index(root, "test")
        shown = v2.Compose([v2.Resize(64, antialias=True), v2.CenterCrop(64)])
        return [shown(decode_rgb(files[i])) for i in indices]
    images, _ = load_images(spec, root, train=False)
    return [images[i] for i in indices]


def plot_examples(
    rows: list[dict[str, Any]],
    samples: list[torch.Tensor] | list[str],
    classes: list[str] | None,
    title: str,
    caption: str,
    paths: list[str],
) -> None:
    """One row per exit: the example images (label / prediction under each, red when wrong), or for text the
    sentences, each with its label and prediction. ``rows``: :func:`pick_examples` rows, ``samples`` in their order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eenet.analysis.plotting import save_figure

    def name(c: int) -> str:
        return classes[c] if classes and c < len(classes) else str(c)

    exits = sorted({r["exit"] for r in rows})
    is_text = bool(samples) and isinstance(samples[0], str)
    if is_text:
        fig = plt.figure(figsize=(10, 1.2 + 0.42 * len(rows) + 0.3 * len(exits)))
        y = 0.97
        step = 0.9 / max(len(rows) + len(exits), 1)
        for k in exits:
            fig.text(0.01, y, f"exit {k}", fontsize=9, weight="bold", va="top")
            y -= step
            for r, s in zip(rows, samples, strict=True):
                if r["exit"] != k:
                    continue
                ok = r["label"] == r["prediction"]
                line = textwrap.shorten(s, 110, placeholder=" ...")
                fig.text(0.03, y, f"[{name(r['label'])} -> {name(r['prediction'])}, p={r['confidence']:.2f}] {line}",
                         fontsize=7, va="top", color="black" if ok else "tab:red")  # fmt: skip
                y -= step
    else:
        cols = max(sum(r["exit"] == k for r in rows) for k in exits) if rows else 1
        fig, axes = plt.subplots(len(exits), cols, figsize=(1.3 * cols + 0.8, 1.5 * len(exits) + 0.8), squeeze=False)
        for a in axes.flat:
            a.axis("off")
        for row_i, k in enumerate(exits):
            picked = [(r, s) for r, s in zip(rows, samples, strict=True) if r["exit"] == k]
            axes[row_i][0].set_title(f"exit {k}", loc="left", fontsize=9, weight="bold")
            for col, (r, img) in enumerate(picked):
                a = axes[row_i][col]
                a.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray" if img.shape[0] == 1 else None)
                ok = r["label"] == r["prediction"]
                a.text(0.5, -0.08, f"{name(r['label'])}\n-> {name(r['prediction'])}", transform=a.transAxes, ha="center",
                       va="top", fontsize=6, color="black" if ok else "tab:red")  # fmt: skip
    fig.suptitle(title, fontsize=10)
    fig.text(0.01, 0.005, caption, fontsize=7, ha="left", va="bottom", wrap=True)
    if not is_text:
        fig.tight_layout(rect=(0, 0.05, 1, 0.95))
        fig.subplots_adjust(hspace=0.55)  # room for the labels under each row (drawn outside the axes)
    save_figure(fig, paths)
    plt.close(fig)
