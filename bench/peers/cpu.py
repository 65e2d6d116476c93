"""CPU time of whole process groups, read from /proc, and CPU pinning.

Every server in the peer benchmark runs in a session (so a process group) of
its own: Portkey's node process, LiteLLM's proxy and its workers, Daphne or
uvicorn. Summing ``utime + stime`` over every member of the group (threads
included, as /proc/PID/stat counts them) plus ``cutime + cstime`` (children
that exited and were reaped) gives the CPU the server spent, whatever it forks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class GroupCpu:
    """CPU seconds of a process group at one instant, and the members counted."""

    user: float
    system: float
    processes: int

    @property
    def total(self) -> float:
        return self.user + self.system


def _stat_fields(pid_dir: Path) -> list[str] | None:
    try:
        raw = (pid_dir / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    return raw[raw.rindex(")") + 2 :].split()


def group_cpu(pgid: int) -> GroupCpu:
    """User and system CPU seconds of every live process in group ``pgid`` (and reaped children)."""
    user = system = 0
    members = 0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry)
        # After the command: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) cutime(13) cstime(14)
        if fields is None or int(fields[2]) != pgid:
            continue
        members += 1
        user += int(fields[11]) + int(fields[13])
        system += int(fields[12]) + int(fields[14])
    return GroupCpu(user / CLOCK_TICKS, system / CLOCK_TICKS, members)


def pids_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system, reaped children included) of the given processes."""
    total = 0
    for pid in pids:
        fields = _stat_fields(PROC / str(pid))
        if fields is not None:
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / CLOCK_TICKS


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used so far (user + nice + system)."""
    first = (PROC / "stat").read_text().splitlines()[0].split()
    return (int(first[1]) + int(first[2]) + int(first[3])) / CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class Pinning:
    """Which CPU the measured server gets and which the load generator, mock and data stores share."""

    server_cpu: int | None
    load_cpu: int | None

    @property
    def enabled(self) -> bool:
        return self.server_cpu is not None

    def server_prefix(self) -> list[str]:
        """The ``taskset`` prefix for a server's command line (empty when not pinning)."""
        return ["taskset", "-c", str(self.server_cpu)] if self.server_cpu is not None else []

    def pin_self_to_load_cpu(self) -> None:
        """Pin this process; the mock, wrk and the embedded Redis/PostgreSQL it starts inherit it."""
        if self.load_cpu is not None:
            os.sched_setaffinity(0, {self.load_cpu})


def choose_pinning(server_cpu: int | None, load_cpu: int | None, enabled: bool) -> Pinning:
    """Default: the last CPU for the server, the first for everything else; none on one CPU."""
    available = sorted(os.sched_getaffinity(0))
    if not enabled or len(available) < 2:
        return Pinning(None, None)
    server = available[-1] if server_cpu is None else server_cpu
    load = available[0] if load_cpu is None else load_cpu
    if server == load:
        raise ValueError("the server and the load generator need different CPUs")
    return Pinning(server, load)
