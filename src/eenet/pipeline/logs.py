"""Glue shared by the workflow's scripts: logging to the rule's log file, run metadata."""

from __future__ import annotations

import logging
import platform
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = ["setup_logging", "run_metadata", "data_root"]


def setup_logging(log_file: str | None, append: bool = False) -> logging.Logger:
    """Log INFO and above to ``log_file`` (the rule's ``log:``; ``append``: after what it holds) and to stderr; return
    the ``eenet`` logger."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a" if append else "w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)
    logger = logging.getLogger("eenet")

    def log_uncaught(exc_type, exc, tb):  # the error lands in the rule's log file, not only on stderr
        logger.error("failed: %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb))

    sys.excepthook = log_uncaught
    return logger


def device_name(device: torch.device) -> str:
    """A human-readable device name: the GPU model, or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu ({name})"


def run_metadata(device: torch.device) -> dict[str, Any]:
    """What produced an artifact: device, torch version, Python version, eenet version."""
    from eenet import __version__

    return {
        "device": device_name(device),
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "eenet_version": __version__,
    }


def data_root(manifest: str | Path) -> Path:
    """The directory of a dataset's files: where ``download_dataset`` wrote its manifest."""
    return Path(manifest).parent
