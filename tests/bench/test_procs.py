"""The benchmarks' CPU clock of another process (``bench.procs.process_cpu_ns``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench import procs


def test_it_reads_this_process_cpu_clock_like_process_time() -> None:
    before, mine = procs.process_cpu_ns(os.getpid()), time.process_time_ns()
    sum(i * i for i in range(200_000))
    used, mine_used = procs.process_cpu_ns(os.getpid()) - before, time.process_time_ns() - mine
    assert used > 0
    assert abs(used - mine_used) < 5_000_000  # the same clock, read a few calls apart


def test_it_meters_another_process_to_finer_than_a_clock_tick() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"  # it has started up
        meter = procs.ClockMeter(child.pid)
        meter.begin()
        used = meter.end()
        assert 0 <= used < 0.01  # a sleeping child: nothing near a 10 ms tick
        started = procs.process_cpu_ns(child.pid)
        assert started > 0 and started % 10_000_000 != 0  # ns, not ticks (start-up used some CPU)
    finally:
        child.communicate(b"")
