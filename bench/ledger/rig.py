"""The processes of a fault run, each one killable and restartable on its own.

A private embedded Redis (append-only, as ``make run`` starts it), the mock
upstream, two gateway processes (Daphne) and a usage drainer (which also runs
the in-flight reaper, as beat would). Every process uses the caller's
PostgreSQL, which must be the run's own embedded server (``pg_dir``): the run
stops and restarts it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs, stack


@dataclass
class Rig:
    """The fault run's processes; ``start()`` brings them up, ``stop()`` takes them all down."""

    var_dir: Path
    database_url: str
    pg_dir: Path  # the data directory of the embedded PostgreSQL behind database_url
    env: dict[str, str] = field(default_factory=dict)
    gateways: list[subprocess.Popen[bytes] | None] = field(default_factory=lambda: [None, None])
    gateway_ports: list[int] = field(default_factory=list)
    mock: subprocess.Popen[bytes] | None = None
    mock_url: str = ""
    drainer: subprocess.Popen[bytes] | None = None
    redis_url: str = ""

    @property
    def logs(self) -> Path:
        return self.var_dir / "logs"

    @property
    def spool(self) -> Path:
        return self.var_dir / "spool"

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.gateway_ports]

    def start(self) -> None:
        """Redis, mock, two gateways and the drainer; returns when all answer."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.start_redis()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "gateway_platform.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "GATEWAY_USAGE_SPOOL_DIR": str(self.spool),
            "GATEWAY_MOCK_UPSTREAM_URL": "",
            "GATEWAY_CONFIG_POLL_SECONDS": "0",
            "GATEWAY_DEFAULT_RPM": "100000000",
            "GATEWAY_DEFAULT_TPM": "100000000",
            "GATEWAY_AUTH_FAILURE_LIMIT": "100000",
            "GATEWAY_KEEPALIVE_SECONDS": "0.5",
            # A killed gateway is found dead within 1.5 s; a record outliving 20 s (its removal was lost
            # while Redis was down) is reaped too: longer than any request of the load.
            "GATEWAY_INFLIGHT_HEARTBEAT_SECONDS": "0.5",
            "GATEWAY_INFLIGHT_MAX_SECONDS": "20",
            "LOG_FORMAT": "console",
            "LOG_LEVEL": "WARNING",
        }
        port = procs.free_port()
        self.mock = procs.start(
            [procs.PYTHON, "manage.py", "mock_upstream", "--port", str(port), "--max-events", "1000000"],
            self.env,
            self.logs / "mock.log",
        )
        self.mock_url = f"http://127.0.0.1:{port}"
        procs.wait_for_http(f"{self.mock_url}/_mock/health", self.mock)
        self.gateway_ports = [procs.free_port(), procs.free_port()]
        for index in (0, 1):
            self.start_gateway(index)
        self.start_drainer()

    # -- Redis ---------------------------------------------------------------------------------

    def start_redis(self) -> None:
        """Start (or restart, replaying its append-only file) the run's Redis."""
        from gateway_platform import embedded

        self.redis_url = embedded.redis_url(self.var_dir)

    def kill_redis(self) -> None:
        """SIGKILL Redis (a crash, not a shutdown) and wait until it no longer answers."""
        from gateway_platform import embedded

        pid = procs.pid_from_file(self.var_dir / "redis" / "redis.pid")
        if pid is None:
            return
        _kill(pid)
        deadline = time.monotonic() + 10
        while embedded._redis_alive(self.var_dir / "redis" / embedded.REDIS_SOCKET):
            if time.monotonic() > deadline:
                raise RuntimeError("the killed Redis still answers")
            time.sleep(0.05)

    # -- the other processes ---------------------------------------------------------------------

    def stop_postgres(self) -> None:
        """Stop PostgreSQL the hard way (``pg_ctl stop -m immediate``: no checkpoint, crash recovery at start)."""
        from pgserver._commands import pg_ctl  # the package's own wrapper (runs as its user under root)

        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.pg_dir, user=user)

    def start_postgres(self) -> None:
        """Start it again as the project starts it (in a fresh process: pgserver caches its servers)."""
        var_dir = self.pg_dir.parent
        out = subprocess.run(
            [procs.PYTHON, "-m", "gateway_platform.embedded", "start", str(var_dir)],
            cwd=procs.BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if f"DATABASE_URL={self.database_url}" not in out.splitlines():
            raise RuntimeError(f"PostgreSQL came back elsewhere: {out}")

    def start_gateway(self, index: int) -> None:
        port = self.gateway_ports[index]
        proc = procs.start(stack.server_command("daphne", port), self.env, self.logs / f"gateway-{index}.log")
        self.gateways[index] = proc
        procs.wait_for_http(f"http://127.0.0.1:{port}/live", proc)

    def kill_gateway(self, index: int) -> None:
        proc = self.gateways[index]
        if proc is not None:
            _kill_process(proc)

    def start_drainer(self, *, pause: float = 0.3) -> None:
        """Start the drainer and wait until it is set up (Django's start-up is slow on a busy machine)."""
        ready = self.var_dir / "drainer.ready"
        ready.unlink(missing_ok=True)
        env = {
            **self.env,
            "LEDGER_DRAIN_PAUSE_SECONDS": str(pause),
            "LEDGER_CLAIM_IDLE_MS": "1500",
            "LEDGER_READY_FILE": str(ready),
            "LOG_LEVEL": "INFO",
        }
        self.drainer = procs.start([procs.PYTHON, "-m", "bench.ledger.drainer"], env, self.logs / "drainer.log")
        deadline = time.monotonic() + 120
        while not ready.exists():
            if self.drainer.poll() is not None:
                raise RuntimeError(f"the drainer exited with {self.drainer.returncode}; see {self.logs}")
            if time.monotonic() > deadline:
                raise RuntimeError("the drainer did not start in 120 s")
            time.sleep(0.05)

    def kill_drainer(self) -> None:
        if self.drainer is not None:
            _kill_process(self.drainer)

    def stop(self) -> None:
        """Stop every process of the run; Redis whatever happens (it daemonizes: nothing else would end it)."""
        from gateway_platform import embedded

        try:
            for proc in [self.drainer, *self.gateways, self.mock]:
                if proc is not None:
                    procs.stop(proc)
        finally:
            embedded.stop(self.var_dir)


@contextlib.contextmanager
def running(var_dir: Path, database_url: str, pg_dir: Path) -> Iterator[Rig]:
    """A started rig in ``var_dir``, stopped on the way out however the run ends.

    A Redis an interrupted earlier run left in ``var_dir`` is stopped first and the
    directory emptied (its append-only file and spool belong to that run).
    """
    from gateway_platform import embedded

    leftover = procs.pid_from_file(var_dir / "redis" / "redis.pid")
    embedded.stop(var_dir)
    if leftover is not None:
        _wait_gone(leftover)  # an exiting Redis removes its socket: not the new one's
    shutil.rmtree(var_dir, ignore_errors=True)
    rig = Rig(var_dir=var_dir, database_url=database_url, pg_dir=pg_dir)
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).wait(timeout)


def _kill_process(proc: subprocess.Popen[bytes]) -> None:
    _kill(proc.pid)
    proc.wait(timeout=10)
