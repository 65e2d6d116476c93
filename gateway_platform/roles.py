"""The production roles: ``python -m gateway_platform serve|worker|beat|migrate``.

Each role reads only environment variables (listed in ``ROLE_SETTINGS`` and in the
README's configuration table) and is used unchanged by ``make run``, the Dockerfile,
``docker-compose.yml`` and the systemd units in ``deploy/``.

Outside local mode a role refuses to start unless ``DATABASE_URL`` and ``REDIS_URL``
(or their ``*_FILE`` variants) and ``DJANGO_SECRET_KEY`` are set: without them the
settings would start embedded servers and a per-checkout secret key, which is right on
a laptop and silently wrong on a fleet of web processes. ``GATEWAY_LOCAL=1`` says
"this is a laptop" (``make run`` sets it).

Building the command lines is pure (``command_for``) so it is tested without
starting anything; ``main`` validates, then ``exec``s the server so signals reach it
directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
ASGI_APP = "gateway_platform.asgi:application"
SERVERS = ("uvicorn", "daphne")
# uvicorn is the default of `serve` by measurement: docs/benchmarks.md, "Server choice"
# (about 1.5x the requests/s of Daphne and ~40 % less CPU per request on the same machine).
DEFAULT_SERVER = "uvicorn"

# Every variable a role reads itself (settings.py reads the rest).
ROLE_SETTINGS = (
    "GATEWAY_LOCAL",
    "GATEWAY_SERVER",
    "GATEWAY_WEB_WORKERS",
    "GATEWAY_SHUTDOWN_GRACE_SECONDS",
    "GATEWAY_FORWARDED_ALLOW_IPS",
    "HOST",
    "PORT",
    "CELERY_CONCURRENCY",
    "CELERY_LOG_LEVEL",
    "GATEWAY_BEAT_SCHEDULE_FILE",
    "GATEWAY_SEED_DEFAULTS",
    "GATEWAY_CONFIG_FILE",
    "GATEWAY_ADMIN_USER",
    "GATEWAY_ADMIN_PASSWORD",
    "PROMETHEUS_MULTIPROC_DIR",
)
ROLES = ("serve", "worker", "beat", "migrate")


class RoleError(Exception):
    """The environment does not allow this role to start (the message says how to fix it)."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    server: str
    workers: int
    host: str
    port: int
    grace_seconds: float
    forwarded_allow_ips: str


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise RoleError(f"{name}={raw!r} is not a boolean (use 1/0, true/false).")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RoleError(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise RoleError(f"{name} must be at least {minimum} (got {value}).")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise RoleError(f"{name}={raw!r} is not a number.") from None
    if value < 0:
        raise RoleError(f"{name} must not be negative (got {value}).")
    return value


def _has(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip() or env.get(f"{name}_FILE", "").strip())


def default_workers() -> int:
    """One web process per CPU this process may run on (one uvicorn process saturates one core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_environment(role: str, env: Mapping[str, str]) -> None:
    """Refuse embedded servers and a generated secret key unless ``GATEWAY_LOCAL`` is set."""
    if role not in ROLES:
        raise RoleError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}.")
    if _bool(env, "GATEWAY_LOCAL"):
        return
    missing = [name for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY") if not _has(env, name)]
    if missing:
        raise RoleError(
            f"{', '.join(missing)} not set. Outside local mode every role needs external PostgreSQL and "
            "Redis URLs and a shared secret key (or NAME_FILE pointing at a file holding it). "
            "Set GATEWAY_LOCAL=1 to use the embedded servers of a laptop."
        )


def serve_options(env: Mapping[str, str]) -> ServeOptions:
    """The web server settings from the environment (validated)."""
    server = env.get("GATEWAY_SERVER", "").strip() or DEFAULT_SERVER
    if server not in SERVERS:
        raise RoleError(f"GATEWAY_SERVER={server!r}: use one of {', '.join(SERVERS)}.")
    workers = _int(env, "GATEWAY_WEB_WORKERS", default_workers())
    if server == "daphne" and workers != 1:
        raise RoleError(
            "Daphne runs one process per `serve`: set GATEWAY_WEB_WORKERS=1 and run more instances, "
            "or use GATEWAY_SERVER=uvicorn (the default) for several worker processes."
        )
    return ServeOptions(
        server=server,
        workers=workers,
        host=env.get("HOST", "").strip() or "127.0.0.1",
        port=_int(env, "PORT", 8000),
        grace_seconds=_float(env, "GATEWAY_SHUTDOWN_GRACE_SECONDS", 30.0),
        forwarded_allow_ips=env.get("GATEWAY_FORWARDED_ALLOW_IPS", "").strip() or "127.0.0.1",
    )


def serve_command(options: ServeOptions, python: str) -> list[str]:
    """The server command line for ``serve``."""
    if options.server == "daphne":
        return [
            python,
            "-m",
            "daphne",
            "-b",
            options.host,
            "-p",
            str(options.port),
            "--proxy-headers",
            "--application-close-timeout",
            str(max(1, int(options.grace_seconds))),
            ASGI_APP,
        ]
    return [
        python,
        "-m",
        "uvicorn",
        ASGI_APP,
        "--host",
        options.host,
        "--port",
        str(options.port),
        "--workers",
        str(options.workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--proxy-headers",
        "--forwarded-allow-ips",
        options.forwarded_allow_ips,
        # On SIGTERM: stop accepting, let open requests and streams finish for this long, then cancel.
        "--timeout-graceful-shutdown",
        str(max(1, int(options.grace_seconds))),
    ]


def var_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("GATEWAY_VAR_DIR", "").strip() or BASE_DIR / "var").resolve()


def command_for(role: str, env: Mapping[str, str], python: str) -> list[str]:
    """The command line a role ``exec``s (``migrate`` runs in process and has none)."""
    if role == "serve":
        return serve_command(serve_options(env), python)
    log_level = env.get("CELERY_LOG_LEVEL", "").strip() or "WARNING"
    if role == "worker":
        concurrency = _int(env, "CELERY_CONCURRENCY", default_workers())
        return [
            python,
            "-m",
            "celery",
            "-A",
            "gateway_platform",
            "worker",
            "--loglevel",
            log_level,
            "--concurrency",
            str(concurrency),
            "--without-mingle",
            "--without-gossip",
        ]
    if role == "beat":
        schedule = env.get("GATEWAY_BEAT_SCHEDULE_FILE", "").strip() or str(var_dir(env) / "celerybeat-schedule")
        return [
            python,
            "-m",
            "celery",
            "-A",
            "gateway_platform",
            "beat",
            "--loglevel",
            log_level,
            "--schedule",
            schedule,
        ]
    raise RoleError(f"role {role!r} has no command line")


def migrate_steps(env: Mapping[str, str]) -> list[tuple[str, ...]]:
    """The management commands ``migrate`` runs, in order (all idempotent)."""
    steps: list[tuple[str, ...]] = [("migrate", "--noinput")]
    if _bool(env, "GATEWAY_SEED_DEFAULTS", default=True):
        steps.append(("seed_defaults",))
    config_file = env.get("GATEWAY_CONFIG_FILE", "").strip()
    if config_file:
        steps.append(("import_config", config_file))
    # A generated admin password is printed once: fine on a laptop, not in a fleet's logs.
    if _bool(env, "GATEWAY_LOCAL") or env.get("GATEWAY_ADMIN_PASSWORD", "").strip():
        steps.append(("ensure_admin",))
    return steps
