"""``make run``: one command that brings the whole platform up on a laptop.

Starts the embedded PostgreSQL and Redis when no URLs are configured, migrates,
seeds defaults, ensures an admin user, starts the bundled mock upstream when no
provider credential is set, then the web server (Daphne, or uvicorn with
``GATEWAY_SERVER=uvicorn``), a Celery worker and beat. Every step is a production
role (``python -m gateway_platform migrate|serve|worker|beat``) run with
``GATEWAY_LOCAL=1``. Ctrl-C stops all.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger("gateway_platform.launcher")

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BANNER = "=" * 78


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _has_provider_credentials() -> bool:
    import django

    django.setup()
    from providers.models import Provider

    return any(p.has_credential for p in Provider.objects.filter(enabled=True))


def _start_mock(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([PYTHON, "manage.py", "mock_upstream", "--port", str(port)], cwd=BASE_DIR)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    raise RuntimeError("the mock upstream did not start")


def _role(role: str) -> list[str]:
    """The production command for a role: `make run` starts exactly what a deployment starts."""
    return [PYTHON, "-m", "gateway_platform", role]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s launcher %(message)s")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_platform.settings")
    from gateway_platform import embedded

    var_dir = Path(os.environ.get("GATEWAY_VAR_DIR", BASE_DIR / "var")).resolve()
    os.environ["GATEWAY_VAR_DIR"] = str(var_dir)
    started_embedded = False
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = embedded.postgres_url(var_dir)
        started_embedded = True
        logger.info("embedded PostgreSQL (pgvector) under %s", var_dir / "pg")
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = embedded.redis_url(var_dir)
        started_embedded = True
        logger.info("embedded Redis under %s", var_dir / "redis")

    # One metrics directory for every process started here, emptied at each start.
    metrics_dir = var_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))

    # The roles refuse embedded servers unless told this is a laptop; the URLs above are shared by all.
    os.environ["GATEWAY_LOCAL"] = "1"
    os.environ.setdefault("GATEWAY_SERVER", "daphne")  # the laptop default; `serve` alone picks uvicorn
    os.environ.setdefault("GATEWAY_WEB_WORKERS", "1")
    os.environ.setdefault("CELERY_CONCURRENCY", "2")
    subprocess.run(_role("migrate"), cwd=BASE_DIR, check=True)

    children: list[subprocess.Popen[bytes]] = []
    if not _has_provider_credentials():
        mock_port = _free_port()
        children.append(_start_mock(mock_port))
        os.environ["GATEWAY_MOCK_UPSTREAM_URL"] = f"http://127.0.0.1:{mock_port}"
        logger.warning(
            "\n%s\nNO PROVIDER CREDENTIALS ARE SET (DEEPSEEK_API_KEY, ANTHROPIC_API_KEY, OPENAI_API_KEY, ...).\n"
            "Every provider without a credential is served by the bundled MOCK UPSTREAM on\n"
            "http://127.0.0.1:%d — answers are fake. Set a credential and restart for real models.\n%s",
            BANNER,
            mock_port,
            BANNER,
        )

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    for role in ("serve", "worker", "beat"):
        children.append(subprocess.Popen(_role(role), cwd=BASE_DIR))
    sys.stderr.write(f"Gateway on http://{host}:{port}  (admin: /admin/, API: /v1/). Ctrl-C stops everything.\n")

    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    exit_code = 0
    while not stopping:
        for child in children:
            if child.poll() is not None:
                logger.error("%s exited with %s; stopping", child.args[:3], child.returncode)
                stopping, exit_code = True, 1
        time.sleep(0.3)

    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    if started_embedded:
        embedded.stop(var_dir)
    logger.info("stopped")
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
