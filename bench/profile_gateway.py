"""Where the gateway's CPU goes: py-spy on the server process under steady load.

``python -m bench.profile_gateway [--server uvicorn|daphne] [--concurrency N] [--stream]``
sets up the same stack as ``bench.gateway``, warms up, then samples the server
with ``py-spy record`` (install with ``pip install py-spy``) while the load
generator runs, and prints the top functions by own time (leaf frames), by
inclusive time, and the own time by package. Raw collapsed stacks go to
``bench/results/profile-<server>-<mode>.txt`` (load them in speedscope or
``flamegraph.pl``); the summary to the JSON beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import gateway, load, procs, report, stack

FRAME_RE = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
PROJECT_DIRS = ("serving/", "routing/", "caching/", "providers/", "billing/", "tenants/", "gateway_platform/", "bench/")


# Leaf frames of threads parked on a lock or queue (thread pool, psycopg pool workers): idle, not work.
IDLE_LEAVES = frozenset(
    {
        "threading.py:Condition.wait",
        "threading.py:Event.wait",
        "concurrent/futures/thread.py:_worker",
        "queue.py:Queue.get",
        "selectors.py:EpollSelector.select",
        # The in-flight heartbeat thread between beats: ``time.sleep`` is C, so its caller is the leaf.
        "billing/inflight.py:_beat_forever",
    }
)
LOOP_FRAMES = ("asyncio/runners.py:", "asyncio/base_events.py:", "asyncio/events.py:", "twisted/")


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    idle: int
    own: Counter[str]
    inclusive: Counter[str]
    packages: Counter[str]
    owners: Counter[str]


def _owner(frames: list[str]) -> str:
    """The innermost project function on the stack; else what the event loop was running.

    A coroutine started as its own task (``asyncio.wait_for`` on Python 3.11,
    ``ensure_future``) loses its caller: such samples are named by their first
    frame below the loop.
    """
    for name in reversed(frames):
        if name.startswith(PROJECT_DIRS) and not name.startswith("bench/"):
            return name
    below_loop = [i for i, name in enumerate(frames) if name.startswith(LOOP_FRAMES)]
    start = below_loop[-1] + 1 if below_loop else 0
    if start >= len(frames):
        return "(event loop itself: uvloop/asyncio internals, socket I/O, HTTP parsing in C)"
    return "(outside project code) " + frames[start]


def _short_path(path: str) -> str:
    base = str(procs.BASE_DIR) + "/"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if path.startswith(base):
        return path[len(base) :]
    match = re.search(r"python3\.\d+/(.*)$", path)
    return f"stdlib/{match.group(1)}" if match else path


def _frame_name(frame: str) -> str:
    match = FRAME_RE.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{_short_path(match.group('path'))}:{match.group('func')}"


def _package(name: str) -> str:
    path = name.split(":", 1)[0]
    if path.startswith(PROJECT_DIRS):
        return "project: " + path.split("/", 1)[0]
    if path.startswith("stdlib/"):
        parts = path.split("/")
        return "stdlib: " + (parts[1] if len(parts) > 2 else parts[1].removesuffix(".py"))
    return path.split("/", 1)[0].removesuffix(".py")


def parse_collapsed(text: str) -> Profile:
    """Aggregate py-spy ``--format raw`` output (``frame;frame;... count`` per line)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    total = idle = 0
    for line in text.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack_text.split(";") if f]
        if not frames:
            continue
        if frames[-1] in IDLE_LEAVES:
            idle += count
            continue
        total += count
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        owners[_owner(frames)] += count
        for name in set(frames):
            inclusive[name] += count
    return Profile(total, idle, own, inclusive, packages, owners)


def _pyspy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def record(pid: int, target: load.Target, concurrency: int, seconds: float, out: Path, rate: int) -> None:
    """Warm up, then load the server while py-spy samples it for ``seconds``."""
    asyncio.run(load.run(target, concurrency=concurrency, duration=2.0, warmup=0, max_requests=10**6))
    spy = subprocess.Popen(
        [_pyspy(), "record", "--pid", str(pid), "--rate", str(rate), "--duration", str(int(seconds)),
         "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(0.5)  # let py-spy attach
    asyncio.run(load.run(target, concurrency=concurrency, duration=seconds + 1.0, warmup=0, max_requests=10**7))
    _, err = spy.communicate(timeout=60)
    if spy.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')[-500:]}")


def _rows(counter: Counter[str], total: int, top: int) -> list[list[object]]:
    return [[name, count, f"{100 * count / total:.1f} %"] for name, count in counter.most_common(top)]


def render(profile: Profile, title: str, top: int) -> str:
    total = max(1, profile.samples)
    return "\n\n".join(
        [
            f"### {title} ({profile.samples:,} busy samples; {profile.idle:,} of idle pool threads left out)",
            "Own time (leaf frame):",
            report.table(["file:function", "Samples", "Share"], _rows(profile.own, total, top)),
            "Inclusive time (function anywhere on the stack):",
            report.table(["file:function", "Samples", "Share"], _rows(profile.inclusive, total, top)),
            "Samples by innermost project function (library time it caused included):",
            report.table(["file:function", "Samples", "Share"], _rows(profile.owners, total, top)),
            "Own time by package:",
            report.table(["Package", "Samples", "Share"], _rows(profile.packages, total, top)),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=stack.SERVERS, default="uvicorn")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    mode = "stream" if args.stream else "plain"
    name = f"profile-{args.server}-{mode}-c{args.concurrency}"
    report.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = report.RESULTS_DIR / f"{name}.txt"
    with stack.backing_services() as backing, stack.mock_upstream(backing.env, backing.logs) as (_, mock):
        secret = stack.create_fixtures(mock)
        with stack.gateway(args.server, backing.env, backing.logs) as (pid, url):
            target = gateway.targets(url, stack.TIER, secret)[args.stream]
            record(pid, target, args.concurrency, args.seconds, raw, args.rate)
    profile = parse_collapsed(raw.read_text())
    title = f"{args.server}, {mode}, concurrency {args.concurrency}, {args.seconds:g} s at {args.rate} Hz"
    markdown = render(profile, title, args.top)
    print(markdown)
    data = {
        "title": title,
        "samples": profile.samples,
        "idle_samples": profile.idle,
        "own": profile.own.most_common(100),
        "inclusive": profile.inclusive.most_common(100),
        "packages": profile.packages.most_common(),
        "owners": profile.owners.most_common(100),
    }
    report.write(name, data, markdown)
    print(f"\nRaw stacks: {raw.relative_to(procs.BASE_DIR)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
