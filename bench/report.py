"""Markdown tables and JSON result files for benchmarks, with the commit and machine they ran on.

Every page in ``docs/`` is written by its benchmark command from that run's results; the
raw results are committed as ``docs/results/<name>.json`` (``write``), each carrying its
``provenance`` (commit, machine, time), and the page ends with ``provenance_line``.

Run a benchmark for the docs from a commit that is on ``main`` (land the code first, then run and
commit only ``docs/``): a commit that a later rebase rewrites is one nobody can check out.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"  # scratch output (git-ignored)
COMMITTED_RESULTS_DIR = BASE_DIR / "docs" / "results"  # the raw results each docs page is written from


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=BASE_DIR, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def provenance() -> dict[str, object]:
    """Where and when this run happened: commit (``+dirty`` with code changes), machine, load."""
    commit = _git("rev-parse", "--short=9", "HEAD") or "unknown"
    # Local changes to code (not to docs/, which generators themselves rewrite) make the run "dirty".
    if _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs"):
        commit += "+dirty"
    return {
        "commit": commit,
        "ran_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def provenance_line(info: dict[str, object] | None = None) -> str:
    """One Markdown line naming the commit, machine and time of the run a page was written from."""
    p = info or provenance()
    load = ", ".join(f"{x:.1f}" for x in p["load_average"])  # type: ignore[attr-defined]
    return (
        f"_Generated from the run at commit `{p['commit']}` on {p['ran_at']}: {p['cpu']} ({p['machine']}, "
        f"{p['cores']} cores), Python {p['python']}, load average {load} at the start._"
    )


def fmt(value: object, digits: int = 2) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write(name: str, data: dict[str, object], markdown: str) -> Path:
    """Write the raw results to ``docs/results/<name>.json`` (with provenance) and the Markdown to
    ``bench/results/<name>.md``; returns the JSON path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    COMMITTED_RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = COMMITTED_RESULTS_DIR / f"{name}.json"
    payload = {"provenance": provenance(), **data}
    path.write_text(json.dumps(payload, indent=2, default=_nan_safe) + "\n")
    (RESULTS_DIR / f"{name}.md").write_text(markdown + "\n")
    return path


def _nan_safe(value: object) -> object:
    return str(value)


def clean(value: object) -> object:
    """NaN → None so the JSON stays standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def server_versions() -> dict[str, str]:
    """PostgreSQL and Redis versions of the servers this run used (Django must be set up)."""
    from django.db import connection

    from gateway_platform.redis_clients import sync_client

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version')")
        postgres = str(cursor.fetchone()[0]).split()[0]
    redis_version = str(sync_client().info("server").get("redis_version", "unknown"))
    return {"postgresql": postgres, "redis": redis_version}


provenance()  # taken when a benchmark starts (it imports this module first), so the load is the start's
