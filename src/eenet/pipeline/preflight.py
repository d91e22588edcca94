"""Checks that stop a wrong benchmark before any job runs, while the Snakefile plans them: a benchmark names a known
dataset and an architecture that reads what the dataset holds, and a dataset's local source is what its kind needs
(an image folder's layout and image sizes, a table's files, columns and labels). Sources that are downloaded or
archives are checked when fetched.

Standard library only at import (the Snakefile imports this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eenet.catalog import (
    BUILTIN_DATASETS,
    METHODS,
    arch_modality,
    dataset_modality,
    local_path,
    renamed_method,
    resolve_datasets,
    split_method,
)
from eenet.datafiles import check_image_sizes, imagefolder_layout, labelled_rows, read_table
from eenet.pipeline.planning import compiled_methods, frontier_networks, known_policy, policy_methods

__all__ = [
    "METHODS", "check_all", "check_arch", "check_benchmark", "check_dataset", "check_frontier_seeds", "rename_former_combiners",
    "resolve_datasets",
]  # fmt: skip


def rename_former_combiners(config: dict[str, Any]) -> str | None:
    """Each benchmark's ``combiners:`` with a former combiner name (``ztw``) read as the name now (``ztw_ens``:
    :func:`eenet.catalog.renamed_method`), before the schema's check; ``config`` is changed in place (a new list per
    benchmark). Returns the one-line notice to show (the benchmarks it was read in), ``None`` when nothing was renamed."""
    where: dict[str, list[str]] = {}  # former name -> the benchmarks naming it
    for name, b in (config.get("benchmarks") or {}).items():
        if isinstance(b, dict) and isinstance(b.get("combiners"), list):
            for c in b["combiners"]:
                if isinstance(c, str) and renamed_method(c)[1]:
                    where.setdefault(c, []).append(name)
            b["combiners"] = [renamed_method(c)[0] if isinstance(c, str) else c for c in b["combiners"]]
    notices = [renamed_method(old, where=f"config: benchmarks {', '.join(names)}: combiners")[1] for old, names in where.items()]
    return "; ".join(str(n) for n in notices) or None


def check_frontier_seeds(benchmarks: dict[str, dict[str, Any]]) -> None:
    """``frontier.seeds`` names training seeds the benchmark trains (``train.seed``, a list or one integer); the config's
    benchmarks before their seeds become runs. ``ValueError`` naming the benchmark and the seeds it lacks."""
    for name, b in benchmarks.items():
        wanted = (b.get("frontier") or {}).get("seeds")
        seed = (b.get("train") or {}).get("seed", 0)
        seeds = seed if isinstance(seed, list) else [seed]
        if wanted is not None and not set(wanted) <= set(seeds):
            lacking = sorted(set(wanted) - set(seeds))
            raise ValueError(f"benchmarks.{name}.frontier.seeds: {lacking} are not among its training seeds {seeds} (train.seed)")


def check_benchmark(name: str, b: dict[str, Any], datasets: dict[str, dict[str, Any]]) -> None:
    """A benchmark names a known dataset and an architecture that reads what the dataset holds; with
    ``frontier.trained``, an architecture that builds its plain networks alone, and depths it has; the policies of
    ``reliability.methods`` are known methods, alone or after a known combiner; those of ``compiled.methods`` are among its
    policies, the oracle left out, on an image model."""
    if b["dataset"] not in datasets:
        raise ValueError(
            f"benchmarks.{name}.dataset: unknown dataset {b['dataset']!r}; built-in: {', '.join(sorted(BUILTIN_DATASETS))}; "
            f"declare your own under `datasets:` (kind imagefolder, table or huggingface)"
        )
    data_kind, arch_kind = dataset_modality(datasets[b["dataset"]]), arch_modality(b["arch"])
    if data_kind != arch_kind:
        raise ValueError(f"benchmarks.{name}: {b['arch']} reads {arch_kind}s but dataset {b['dataset']} holds {data_kind}s")
    try:
        frontier_networks(b)  # the plain networks it trains alone, if any: an architecture that builds them, depths that exist
    except ValueError as exc:
        raise ValueError(f"benchmarks.{name}.{exc}") from None
    for method in (b.get("reliability") or {}).get("methods") or []:
        try:
            known_policy(method)
        except ValueError as exc:
            raise ValueError(f"benchmarks.{name}.reliability.methods: {method!r}: {exc}") from None
    compiled = compiled_methods(b)
    if compiled and arch_kind != "image":
        raise ValueError(f"benchmarks.{name}.compiled.methods: {b['arch']} is a {arch_kind} model; compiled timing takes image models only")
    policies = policy_methods(b) if compiled else []
    for method in compiled:
        if method not in policies or split_method(method)[1] == "oracle":
            raise ValueError(f"benchmarks.{name}.compiled.methods: {method!r} is not one of its policies that run as inference "
                             f"(methods and their combinations, less the oracle: {[m for m in policies if 'oracle' not in m]})"
                             )  # fmt: skip


def _check_table(name: str, d: dict[str, Any]) -> None:
    classes = d["classes"]
    for part in ("train", "test"):
        if not d[part]:
            continue
        path = local_path(d[part])
        if not path.is_file():
            raise FileNotFoundError(f"datasets.{name}.{part}: no file {path}")
        _, _, found = labelled_rows(name, read_table(path), d, classes, f"datasets.{name}.{part} ({path})")
        classes = classes if classes is not None else found  # the test file's labels are the training file's classes


def check_dataset(name: str, d: dict[str, Any]) -> None:
    """Look at a dataset's local source before any job: an image folder's layout (class folders with images, the
    image sizes when they are not resized: all of them up to 5,000 files, an even sample above), a table's files,
    columns and labels. Sources that are downloaded or archives are checked when fetched."""
    if d["kind"] == "imagefolder":
        source = d["path"] or d["mirror"]
        if not source or d["url"] or Path(source).is_file():
            return  # an archive: checked when it is fetched
        if d["builtin"] and not Path(source).is_dir():
            return  # e.g. the ImageNet placeholder of config.yaml: the download job says what to provide
        classes, files = imagefolder_layout(name, Path(source), d)
        every = [f for f, _ in (files["train"] + files["test"] if isinstance(files, dict) else files)]
        check_image_sizes(name, every, d, limit=5000)
    elif d["kind"] == "table" and not d["builtin"]:
        _check_table(name, d)
    elif d["kind"] == "huggingface" and (d["path"] or d["mirror"]) and not d["builtin"]:
        source = Path(d["path"] or d["mirror"])
        if not source.is_dir():
            raise FileNotFoundError(f"datasets.{name}.path: {source} is not a directory of the dataset's parquet / CSV / JSON-lines files")


def check_arch(arch: str, arch_kwargs: dict[str, Any], in_channels: int | None) -> None:
    """A ``torchvision:`` or ``huggingface:`` backbone has the exits the config names
    (:func:`eenet.models.backbones.check_backbone`; torch is imported only for such a backbone)."""
    if ":" in arch:
        from eenet.models.backbones import check_backbone

        check_backbone(arch, arch_kwargs, in_channels)


def check_all(benchmarks: dict[str, dict[str, Any]], datasets: dict[str, dict[str, Any]]) -> None:
    """Every check of this module on every benchmark of the config, whatever target is asked for: each benchmark's
    dataset and architecture (:func:`check_benchmark`), each dataset in use once (:func:`check_dataset`), each distinct
    architecture once (:func:`check_arch`). Run while the Snakefile is parsed, so that a wrong value stops ``all``, a
    single file and a dry run alike, before Snakemake compares any file's age (an input function's error can be
    passed over when the outputs exist: the old results would be served as current)."""
    for name, b in benchmarks.items():
        check_benchmark(name, b, datasets)
    for name in sorted({b["dataset"] for b in benchmarks.values()}):
        check_dataset(name, datasets[name])
    seen: set[str] = set()
    for name, b in benchmarks.items():
        in_channels = datasets[b["dataset"]]["in_channels"]
        key = repr((b["arch"], sorted((b.get("arch_kwargs") or {}).items()), in_channels))
        if key in seen:
            continue
        seen.add(key)
        try:
            check_arch(b["arch"], b.get("arch_kwargs") or {}, in_channels)
        except (ValueError, KeyError, TypeError, FileNotFoundError) as exc:
            raise ValueError(f"benchmarks.{name}: {exc}") from exc
