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
when a job finishes. The timer is a daemon thread, so Snakemake does not wait for it when it exits. Where the method
is not found (another Snakemake), nothing is changed.
"""

from __future__ import annotations

import threading
from typing import Any

_PATCHED = "_eenet_one_timer"


def one_pending_reevaluation(scheduler: Any, delay: float) -> bool:
    """Wake ``scheduler``'s loop (release its ``_open_jobs`` semaphore) after ``delay`` seconds, unless a wake-up
    started here is already pending. Returns whether a timer was started."""
    lock = scheduler.__dict__.setdefault("_eenet_timer_lock", threading.Lock())
    with lock:
        if scheduler.__dict__.get("_eenet_timer_pending"):
            return False
        scheduler._eenet_timer_pending = True

    def wake() -> None:
        with lock:
            scheduler._eenet_timer_pending = False
        scheduler._open_jobs.release()

    timer = threading.Timer(delay, wake)
    timer.daemon = True
    timer.start()
    return True


def apply() -> bool:
    """Install :func:`one_pending_reevaluation` on Snakemake's ``JobScheduler``; returns whether it is installed."""
    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:
        return False
    current = getattr(JobScheduler, "_schedule_reevalutation", None)
    if current is None:
        return False
    if not getattr(current, _PATCHED, False):

        def _schedule_reevalutation(self: Any, delay: float) -> None:
            one_pending_reevaluation(self, delay)

        setattr(_schedule_reevalutation, _PATCHED, True)
        JobScheduler._schedule_reevalutation = _schedule_reevalutation
    return True
