"""A repair of Snakemake's job scheduler, applied by the workflow when it is parsed (rules/common.smk).

Snakemake 9 limits job submissions with a rate limiter (``--max-jobs-per-timespan``, default ``100/1s``, on even for
local runs). After each pass of its scheduling loop that leaves ready jobs waiting (no free core), it starts a
timer that wakes the loop again one timespan later — one more timer *per pass*, and every finished job adds a pass.
While jobs wait for cores, the timers never die out: after N finished jobs, N timers wake the loop N times a second,
and each pass checks the size of every input of every waiting job. Measured on a 2-core machine (the 6-exit
benchmarks, 382 jobs): after 93 finished jobs the Snakemake process held 93 timer threads and 44 % of a core, and a
training epoch beside it took 140-155 s instead of 53 s. Upstream: snakemake/snakemake pull request 3744 (open).

:func:`apply` replaces the scheduler's ``_schedule_reevalutation`` by one that keeps at most one timer pending: the
loop still wakes a timespan after it last found jobs waiting (what the rate limiter needs), and still wakes at once
when a job finishes. The timer is a daemon thread, so Snakemake does not wait for it when it exits.

No supported setting avoids the fault without a cost: the timers come from the rate limiter, which cannot be turned
off from the command line or a profile (``--max-jobs-per-timespan`` wants ``N/timespan``; a long timespan leaves
non-daemon timers that keep Snakemake from exiting). The repair replaces a private method, so it is tied to the
Snakemake it was written for (:data:`WRITTEN_FOR`, the version requirements.txt pins): on any other version
:func:`apply` stops the workflow with a message saying so, rather than let the slow epochs come back unnoticed.
``EENET_SCHEDULER_REPAIR=0`` runs without the repair (on another Snakemake, at that Snakemake's speed).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["WRITTEN_FOR", "SWITCH", "SchedulerRepairError", "one_pending_reevaluation", "apply"]

_PATCHED = "_eenet_one_timer"
WRITTEN_FOR = "9.27.1"
"""The Snakemake version whose ``JobScheduler._schedule_reevalutation`` the repair replaces (requirements.txt pins it)."""
SWITCH = "EENET_SCHEDULER_REPAIR"
"""Environment variable: ``0`` runs the workflow without the repair."""


class SchedulerRepairError(RuntimeError):
    """The repair cannot be installed on this Snakemake: the message says why and what to do."""


def one_pending_reevaluation(scheduler: Any, delay: float, *, timer: Callable[[float, Callable[[], None]], Any] = threading.Timer) -> bool:
    """Wake ``scheduler``'s loop (release its ``_open_jobs`` semaphore) after ``delay`` seconds, unless a wake-up
    started here is already pending. Returns whether a timer was started. ``timer(delay, function)``: makes the
    timer, a thread that is made a daemon and started (:class:`threading.Timer`; a test passes one it fires itself)."""
    lock = scheduler.__dict__.setdefault("_eenet_timer_lock", threading.Lock())
    with lock:
        if scheduler.__dict__.get("_eenet_timer_pending"):
            return False
        scheduler._eenet_timer_pending = True

    def wake() -> None:
        with lock:
            scheduler._eenet_timer_pending = False
        scheduler._open_jobs.release()

    pending = timer(delay, wake)
    pending.daemon = True
    pending.start()
    return True


def apply(version: str | None = None) -> bool:
    """Install :func:`one_pending_reevaluation` on Snakemake's ``JobScheduler``. Returns ``True`` once installed,
    ``False`` only when ``EENET_SCHEDULER_REPAIR=0`` asks to run without it.

    Raises:
        SchedulerRepairError: Snakemake is not version :data:`WRITTEN_FOR` (``version``: the installed one, read from
            the package when not given), or its scheduler has no such method.
    """
    if os.environ.get(SWITCH, "1") == "0":
        return False
    if version is None:
        from snakemake import __version__ as version
    if version != WRITTEN_FOR:
        raise SchedulerRepairError(
            f"eenet.pipeline.scheduling repairs Snakemake {WRITTEN_FOR}'s job scheduler (one re-evaluation timer at a time; "
            f"without it a 2-core run spends up to half a core on timers), but Snakemake {version} is installed. Install the "
            f"pinned one (.venv/bin/pip install snakemake=={WRITTEN_FOR}, or `make`), or run without the repair: "
            f"{SWITCH}=0 snakemake ..."
        )
    from snakemake.scheduling.job_scheduler import JobScheduler

    current = getattr(JobScheduler, "_schedule_reevalutation", None)
    if current is None:
        raise SchedulerRepairError(f"Snakemake {version} has no JobScheduler._schedule_reevalutation to repair: run with {SWITCH}=0")
    if not getattr(current, _PATCHED, False):

        def _schedule_reevalutation(self: Any, delay: float) -> None:
            one_pending_reevaluation(self, delay)

        setattr(_schedule_reevalutation, _PATCHED, True)
        JobScheduler._schedule_reevalutation = _schedule_reevalutation
    return True
