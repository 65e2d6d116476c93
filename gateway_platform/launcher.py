"""``make run``: one command that brings the whole platform up on a laptop.

Starts the embedded PostgreSQL and Redis when no URLs are configured, migrates,
seeds defaults, ensures an admin user, starts the bundled mock upstream when no
provider credential is set, then the web server (uvicorn, the faster by measurement; Daphne with
``GATEWAY_SERVER=daphne``), a Celery worker and beat. Every step is a production
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
    # Its "listening on" line is on stdout: the launcher's banner says it instead.
    command = [PYTHON, "manage.py", "mock_upstream", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=BASE_DIR, stdout=subprocess.DEVNULL)
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


def next_steps(base: str) -> str:
    """The closing banner: where the gateway is, then the next three commands a new user runs."""
    body = '{"model": "auto", "messages": [{"role": "user", "content": "Hello"}]}'
    return (
        f"{BANNER}\n"
        f"Gateway on {base}/ : open it for the portal, reports, admin and API docs. Ctrl-C stops everything.\n"
        "Next, in another terminal:\n"
        "  1. Create a key (prints only the secret):\n"
        "       export KEY=$(.venv/bin/python manage.py create_api_key --tenant demo --team dev --name laptop)\n"
        "  2. Send a request:\n"
        f'       curl {base}/v1/chat/completions -H "Authorization: Bearer $KEY" \\\n'
        f"            -H 'Content-Type: application/json' -d '{body}'\n"
        f"  3. Point your IDE at base URL {base}/v1 with that key"
        f" (Claude Code: ANTHROPIC_BASE_URL={base} ANTHROPIC_AUTH_TOKEN=$KEY).\n"
        f"{BANNER}\n"
    )


def _wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Return once the web server accepts connections (or it died, or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex((host if host != "0.0.0.0" else "127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)


def main() -> int:
    # Every process started here logs for a human (one line per event); production stays JSON.
    os.environ.setdefault("LOG_FORMAT", "console")
    from gateway_platform.logging import ConsoleFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(ConsoleFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
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
    os.environ.setdefault("GATEWAY_SERVER", "uvicorn")  # as `serve` in production (docs/benchmarks.md)
    os.environ.setdefault("GATEWAY_WEB_WORKERS", "1")
    os.environ.setdefault("CELERY_CONCURRENCY", "2")
    subprocess.run(_role("migrate"), cwd=BASE_DIR, check=True)

    children: list[subprocess.Popen[bytes]] = []
    if not _has_provider_credentials():
        mock_port = _free_port()
        children.append(_start_mock(mock_port))
        os.environ["GATEWAY_MOCK_UPSTREAM_URL"] = f"http://127.0.0.1:{mock_port}"
        # A banner, not a log event: written as is so that it stays readable.
        sys.stderr.write(
            f"{BANNER}\nNO PROVIDER CREDENTIALS ARE SET (DEEPSEEK_API_KEY, ANTHROPIC_API_KEY, OPENAI_API_KEY, ...).\n"
            "Every provider without a credential is served by the bundled MOCK UPSTREAM on\n"
            f"http://127.0.0.1:{mock_port} — answers are fake. Set a credential and restart for real models.\n"
            f"{BANNER}\n"
        )

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    for role in ("serve", "worker", "beat"):
        # Celery prints its start-up banners on stdout; its log lines (stderr) are what a human needs.
        stdout = None if role == "serve" else subprocess.DEVNULL
        children.append(subprocess.Popen(_role(role), cwd=BASE_DIR, stdout=stdout))
    _wait_for_port(host, port, children[-3])
    sys.stderr.write(next_steps(f"http://{host}:{port}"))

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
