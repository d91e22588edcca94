"""The repair of Snakemake's scheduler (eenet.pipeline.scheduling): one re-evaluation timer at a time, installed by the
workflow itself."""

from __future__ import annotations

import subprocess
import sys
import threading
import types
from collections.abc import Callable

from helpers import TARGET, copy_workflow, tiny_config, workflow_env

from eenet.pipeline.scheduling import apply, one_pending_reevaluation


class Loop:
    """What the repair touches of Snakemake's JobScheduler: the semaphore that wakes its scheduling loop."""

    def __init__(self) -> None:
        self._open_jobs = threading.Semaphore(0)


def wake_ups(loop: Loop) -> int:
    n = 0
    while loop._open_jobs.acquire(blocking=False):
        n += 1
    return n


class Timers:
    """A stand-in for threading.Timer that the test fires itself: every timer made, with its delay and function."""

    def __init__(self) -> None:
        self.made: list[types.SimpleNamespace] = []

    def __call__(self, delay: float, function: Callable[[], None]) -> types.SimpleNamespace:
        t = types.SimpleNamespace(delay=delay, function=function, daemon=False, started=False)
        t.start = lambda: setattr(t, "started", True)
        self.made.append(t)
        return t


def test_many_requests_while_one_is_pending_wake_the_loop_once():
    loop, timers = Loop(), Timers()
    started = [one_pending_reevaluation(loop, 0.05, timer=timers) for _ in range(50)]  # what 50 passes of the loop would ask
    assert started == [True] + [False] * 49
    (pending,) = timers.made  # one timer (Snakemake's own method: 50 timers, 50 wake-ups, each asking for another)
    assert (pending.delay, pending.daemon, pending.started) == (0.05, True, True)  # daemon: Snakemake does not wait for it
    assert wake_ups(loop) == 0  # not before it fires
    pending.function()
    assert wake_ups(loop) == 1
    # once it has fired, the next request starts a timer again: the loop is never left asleep
    assert one_pending_reevaluation(loop, 0.05, timer=timers) is True and len(timers.made) == 2
    assert one_pending_reevaluation(loop, 0.05, timer=timers) is False
    timers.made[1].function()
    assert wake_ups(loop) == 1


def test_the_default_timer_is_a_daemon_thread_that_wakes_the_loop():
    """With threading.Timer: the request starts one daemon timer thread, which wakes the loop once when it fires
    (waited for by joining it, not by sleeping)."""
    loop = Loop()
    before = set(threading.enumerate())
    assert one_pending_reevaluation(loop, 0.2) is True and one_pending_reevaluation(loop, 0.2) is False
    (timer,) = [t for t in threading.enumerate() if t not in before and isinstance(t, threading.Timer)]
    assert timer.daemon
    timer.join(timeout=60)
    assert not timer.is_alive() and wake_ups(loop) == 1


def test_snakemake_as_installed_uses_the_repair_after_the_workflow_is_parsed(tmp_path):
    """A dry run of the tiny workflow in a fresh process: its scheduler's re-evaluation is the repaired one."""
    wd = copy_workflow(tmp_path, tiny_config())
    probe = (
        "import sys, snakemake.cli\n"
        "from snakemake.scheduling.job_scheduler import JobScheduler as J\n"
        "before = getattr(J._schedule_reevalutation, '_eenet_one_timer', False)\n"
        f"try:\n    snakemake.cli.main(['-n', '--quiet', 'all', '--cores', '1', '{TARGET}'])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print(before, getattr(J._schedule_reevalutation, '_eenet_one_timer', False))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=wd, capture_output=True, text=True, env=workflow_env(wd), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["False", "True"]


def test_apply_is_idempotent():
    from snakemake.scheduling.job_scheduler import JobScheduler

    assert apply() is True
    method = JobScheduler._schedule_reevalutation
    assert apply() is True and JobScheduler._schedule_reevalutation is method


def test_another_snakemake_stops_with_a_clear_message_and_the_pin_is_the_repaired_version(monkeypatch):
    import re
    from pathlib import Path

    import pytest

    from eenet.pipeline.scheduling import SWITCH, WRITTEN_FOR, SchedulerRepairError

    monkeypatch.delenv(SWITCH, raising=False)
    with pytest.raises(SchedulerRepairError, match=r"Snakemake 9\.99\.0 is installed.*EENET_SCHEDULER_REPAIR=0"):
        apply(version="9.99.0")
    monkeypatch.setenv(SWITCH, "0")
    assert apply(version="9.99.0") is False  # the user's explicit choice: no repair, no error
    root = Path(__file__).resolve().parents[1]
    pins = re.findall(r"^snakemake==(\S+)$", (root / "requirements.txt").read_text(), flags=re.M)
    assert pins == [WRITTEN_FOR]
    assert re.search(rf'min_version\(\s*"{re.escape(WRITTEN_FOR)}"\s*\)', (root / "Snakefile").read_text())
