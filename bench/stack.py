"""Everything a gateway benchmark needs, set up from nothing and torn down after.

An isolated var dir (embedded PostgreSQL + Redis), migrations, a provider /
model / tier / API key pointing at the bundled mock upstream, and the gateway
under Daphne or uvicorn, all as child processes of the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import procs

VAR_DIR = procs.BASE_DIR / "var" / "bench"
UNLIMITED = "100000000"
PROVIDER = "bench-mock"
MODEL = "bench-model"
TIER = "bench-tier"
UPSTREAM_MODEL = "mock-gpt"
SERVERS = ("daphne", "uvicorn")


@dataclass(frozen=True, slots=True)
class Backing:
    """The embedded servers of the bench var dir and the environment pointing at them."""

    var_dir: Path
    env: dict[str, str]

    @property
    def logs(self) -> Path:
        return self.var_dir / "logs"

    def redis_pid(self) -> int | None:
        return procs.pid_from_file(self.var_dir / "redis" / "redis.pid")

    def postgres_pid(self) -> int | None:
        return procs.pid_from_file(self.var_dir / "pg" / "postmaster.pid")


def _embedded_stop(var_dir: Path) -> None:
    from gateway_platform import embedded

    embedded.stop(var_dir)


def _fresh_backing(var_dir: Path) -> Backing:
    """Stop and wipe what a previous run left, then start embedded PostgreSQL and Redis."""
    from gateway_platform import embedded

    if var_dir.exists():
        _embedded_stop(var_dir)
        shutil.rmtree(var_dir)
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="gateway_platform.settings",
        GATEWAY_VAR_DIR=str(var_dir),
        DATABASE_URL=embedded.postgres_url(var_dir),
        REDIS_URL=embedded.redis_url(var_dir),
        GATEWAY_MOCK_UPSTREAM_URL="",
        GATEWAY_DEFAULT_RPM=UNLIMITED,
        GATEWAY_DEFAULT_TPM=UNLIMITED,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="console",
    )
    return Backing(var_dir, env)


def _migrate(backing: Backing) -> None:
    log_path = backing.logs / "migrate.log"
    with open(log_path, "ab") as log:
        result = subprocess.run(
            [procs.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=procs.BASE_DIR,
            env=backing.env,
            check=False,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-5:])
        raise RuntimeError(f"manage.py migrate failed (see {log_path}):\n{tail}")


def _django_setup(backing: Backing) -> None:
    """Set up Django in this process on the bench database (for fixtures and the usage stream)."""
    import django

    os.environ.update(backing.env)
    django.setup()


def create_fixtures(mock_url: str) -> str:
    """Provider → model → tier for the mock upstream, and an API key; returns the key's secret."""
    from tests.factories import make_key, make_model, make_provider, make_tier

    provider = make_provider(f"{mock_url}/v1", kind="openai", name=PROVIDER)
    model = make_model(provider, name=MODEL, upstream_model=UPSTREAM_MODEL)
    make_tier(TIER, [model])
    return make_key()[1]


def trim_usage() -> None:
    """Drop queued usage records (no Celery worker drains them during a benchmark)."""
    from billing import usage
    from gateway_platform.redis_clients import sync_client

    sync_client().xtrim(usage.STREAM, maxlen=0)


def redis_command_counts() -> dict[str, int]:
    """Commands Redis has executed so far by name (INFO commandstats; commands run by Lua scripts included)."""
    from gateway_platform.redis_clients import sync_client

    stats = sync_client().info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(entry["calls"])
        for name, entry in stats.items()
        if name.startswith("cmdstat_") and name not in ("cmdstat_info", "cmdstat_xtrim")
    }


@contextlib.contextmanager
def backing_services(var_dir: Path = VAR_DIR) -> Iterator[Backing]:
    """Fresh embedded PostgreSQL + Redis, migrated, with Django set up in this process."""
    backing = _fresh_backing(var_dir)
    backing.logs.mkdir(parents=True, exist_ok=True)
    try:
        _migrate(backing)
        _django_setup(backing)
        try:
            yield backing
        finally:
            _close_django_connections()
    finally:
        _embedded_stop(var_dir)


def _close_django_connections() -> None:
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()
        if hasattr(conn, "close_pool"):
            conn.close_pool()


@contextlib.contextmanager
def mock_upstream(env: dict[str, str], logs: Path) -> Iterator[tuple[int, str]]:
    """The bundled mock provider on a free port; yields (pid, base URL)."""
    port = procs.free_port()
    proc = procs.start(
        [procs.PYTHON, "manage.py", "mock_upstream", "--port", str(port)], env, logs / "mock_upstream.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for_http(f"{url}/_mock/health", proc)
        yield proc.pid, url
    finally:
        procs.stop(proc)


def server_command(server: str, port: int, app: str = "gateway_platform.asgi:application") -> list[str]:
    """The command line the README documents for each supported ASGI server (serving ``app``)."""
    if server == "uvicorn":
        return [
            procs.PYTHON, "-m", "uvicorn", app, "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        ]  # fmt: skip
    if server == "daphne":
        return [procs.PYTHON, "-m", "daphne", "-p", str(port), app]
    raise ValueError(f"unknown server {server!r}")


@contextlib.contextmanager
def gateway(server: str, env: dict[str, str], logs: Path, wrap: list[str] | None = None) -> Iterator[tuple[int, str]]:
    """The gateway under ``server`` on a free port; yields (pid, base URL).

    ``wrap`` prefixes the command (a profiler); the pid is then the profiler's child.
    """
    port = procs.free_port()
    proc = procs.start([*(wrap or []), *server_command(server, port)], env, logs / f"gateway-{server}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for_http(f"{url}/live", proc)
        yield _server_pid(proc.pid, bool(wrap)), url
    finally:
        procs.stop(proc)


def _server_pid(pid: int, wrapped: bool) -> int:
    if not wrapped:
        return pid
    import psutil

    children = psutil.Process(pid).children(recursive=True)
    return children[0].pid if children else pid
