"""Child processes for benchmarks: free ports, start/stop, readiness and CPU accounting."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``args`` in the repository root with stdout/stderr going to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(args, cwd=BASE_DIR, env=dict(env), stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers below 500; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


@dataclass(frozen=True, slots=True)
class CpuUse:
    """User and system CPU seconds."""

    user: float = 0.0
    system: float = 0.0

    @property
    def total(self) -> float:
        return self.user + self.system

    def __add__(self, other: CpuUse) -> CpuUse:
        return CpuUse(self.user + other.user, self.system + other.system)

    def __sub__(self, other: CpuUse) -> CpuUse:
        return CpuUse(max(0.0, self.user - other.user), max(0.0, self.system - other.system))


def _cpu_of(proc: psutil.Process) -> CpuUse:
    with contextlib.suppress(psutil.Error):
        times = proc.cpu_times()
        return CpuUse(float(times.user), float(times.system))
    return CpuUse()


class CpuMeter:
    """User+system CPU seconds of a set of processes (and optionally their children)."""

    def __init__(self, pids: Iterable[int], *, children: bool = False) -> None:
        self._roots = [psutil.Process(pid) for pid in pids]
        self._children = children
        self._start: dict[int, CpuUse] = {}

    def _processes(self) -> list[psutil.Process]:
        procs = list(self._roots)
        if self._children:
            for root in self._roots:
                with contextlib.suppress(psutil.Error):
                    procs.extend(root.children(recursive=True))
        return procs

    def _snapshot(self) -> dict[int, CpuUse]:
        return {proc.pid: _cpu_of(proc) for proc in self._processes()}

    def begin(self) -> None:
        self._start = self._snapshot()

    def end(self) -> CpuUse:
        """CPU used since ``begin`` (processes that exited in between are not counted)."""
        used = CpuUse()
        for pid, cpu in self._snapshot().items():
            used += cpu - self._start.get(pid, CpuUse())
        return used


def process_cpu_ns(pid: int) -> int:
    """CPU nanoseconds used so far by every thread of process ``pid``, exited threads included.

    Read from the process's CPU-time clock (``clock_getcpuclockid``: ``~pid << 3 | CPUCLOCK_SCHED``),
    which the scheduler keeps to the nanosecond; ``/proc/<pid>/stat`` (psutil) counts in clock ticks
    (10 ms), too coarse to tell a few µs per event apart over a short measurement.
    """
    return time.clock_gettime_ns(((~pid) << 3) | 2)


class ClockMeter:
    """Precise CPU seconds of one process (``process_cpu_ns``): user and system together."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._start = 0

    def begin(self) -> None:
        self._start = process_cpu_ns(self._pid)

    def end(self) -> float:
        """CPU seconds used since ``begin``."""
        return (process_cpu_ns(self._pid) - self._start) / 1e9


class MachineMeter:
    """Machine-wide CPU: cores busy (all processes) and cores stolen by the hypervisor, per wall second."""

    def __init__(self) -> None:
        self._start = psutil.cpu_times()
        self._wall = time.perf_counter()

    def begin(self) -> None:
        self._start = psutil.cpu_times()
        self._wall = time.perf_counter()

    def end(self) -> tuple[float, float, float]:
        """(wall seconds, busy CPU seconds, stolen CPU seconds) since ``begin``."""
        now = psutil.cpu_times()
        wall = time.perf_counter() - self._wall
        busy = sum(getattr(now, f) - getattr(self._start, f) for f in _BUSY_FIELDS if hasattr(now, f))
        steal = getattr(now, "steal", 0.0) - getattr(self._start, "steal", 0.0)
        return wall, busy, steal


# Interrupt time is left out: loopback traffic of the benchmark itself is handled there.
_BUSY_FIELDS = ("user", "nice", "system")


def wait_until_quiet(max_cores: float, timeout: float, window: float = 1.0) -> float:
    """Wait (at most ``timeout`` s) for a ``window`` in which the machine uses under ``max_cores``.

    Called while the benchmark's own processes idle, so what it sees is other work
    on a shared machine. Returns the cores busy in the last window.
    """
    deadline = time.monotonic() + timeout
    meter = MachineMeter()
    while True:
        meter.begin()
        time.sleep(window)
        wall, busy, _ = meter.end()
        cores = busy / wall
        if cores < max_cores or time.monotonic() >= deadline:
            return cores


@dataclass(slots=True)
class QuietPolicy:
    """How a benchmark copes with other work on a shared machine.

    Before each cell it waits (at most ``quiet_wait`` s) for a quiet second; a cell
    during which other processes used more than ``max_other_load`` cores is run
    again, up to ``retries`` times. All waiting and re-running together may take
    at most ``patience`` seconds per benchmark, so a busy machine cannot make it
    run forever: after that, cells are kept as measured (and flagged by their
    ``other_cpu_cores``).
    """

    max_other_load: float
    retries: int
    quiet_wait: float
    patience: float

    def run(self, measure: Callable[[], dict[str, object]], progress: Callable[[str], None]) -> dict[str, object]:
        for attempt in range(1, self.retries + 2):
            started = time.monotonic()
            wait_until_quiet(self.max_other_load, min(self.quiet_wait, max(0.0, self.patience)))
            cell = measure()
            cell["attempts"] = attempt
            noisy = float(cell["other_cpu_cores"]) > self.max_other_load  # type: ignore[arg-type]
            if attempt > 1 or noisy:
                self.patience -= time.monotonic() - started
            if not noisy or self.patience <= 0:
                return cell
            progress(f"    other processes used {cell['other_cpu_cores']:.2f} cores meanwhile; measuring again")
        return cell


def pid_from_file(path: Path) -> int | None:
    """The first line of a pid file (Redis' pidfile, PostgreSQL's postmaster.pid)."""
    try:
        return int(path.read_text().splitlines()[0].strip())
    except (OSError, ValueError, IndexError):
        return None


def machine_info() -> dict[str, object]:
    import platform

    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        **_git_state(),
    }


def _git_state() -> dict[str, object]:
    """The commit measured and whether the tree had local changes (read-only git commands)."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=BASE_DIR, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", ".", ":!bench")),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"
