"""Continuous trajectory export (seed 003 ``telemetry.exportPath``): one JSON line per request.

A Celery beat task (``routing.tasks.export_trajectories``) appends every usage
event recorded since its last run to ``GATEWAY_TRAJECTORY_EXPORT_PATH``: the
route decision and its reason (tier, complexity score, strategy, affinity),
the hops tried, the cascade outcome, the cache status, the tokens each
reduction saved and the cost. The file is rotated when it passes
``GATEWAY_TRAJECTORY_MAX_BYTES`` (``path.1`` … ``path.N``, the oldest
dropped beyond ``GATEWAY_TRAJECTORY_BACKUPS``). Where the export stands is a
cursor file beside it (the last exported event id, written after the lines are
on disk), so a crash re-exports at most one batch. Events are exported once
they are ``SETTLE_SECONDS`` old, so a drain transaction that commits late is
not skipped; a Redis lock keeps two workers from exporting at once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone
from redis.exceptions import RedisError

from gateway_platform.redis_clients import sync_client
from routing.cascade import DECISION_KEY

logger = logging.getLogger(__name__)

BATCH = 5000
SETTLE_SECONDS = 10
LOCK_KEY = "gw:trajectory-export"
LOCK_SECONDS = 300


@dataclass(frozen=True, slots=True)
class ExportConfig:
    path: Path
    max_bytes: int
    backups: int

    @classmethod
    def from_settings(cls) -> ExportConfig | None:
        raw = settings.GATEWAY["TRAJECTORY_EXPORT_PATH"]
        if not raw:
            return None
        return cls(Path(raw), settings.GATEWAY["TRAJECTORY_MAX_BYTES"], settings.GATEWAY["TRAJECTORY_BACKUPS"])


def trajectory_line(event: Any) -> dict[str, Any]:
    """One request as the export writes it."""
    reason = event.route_reason or {}
    return {
        "ts": event.started_at.isoformat(),
        "request_id": event.request_id,
        "tenant_id": event.tenant_id,
        "endpoint": event.endpoint,
        "session": event.session,
        "requested_model": event.requested_model,
        "route": {k: reason.get(k) for k in ("tier", "score", "reason", "strategy", "adjustment", "affinity")}
        | {"features": reason.get("features", [])[:3]},
        "tier": event.tier,
        "model": event.model,
        "provider": event.provider,
        "hops": event.attempts,
        "cascade": reason.get(DECISION_KEY),
        "cache": {"status": event.cache_status, "similarity": event.cache_similarity},
        "status": event.status_code,
        "error": event.error_code,
        "tokens": {
            "prompt": event.prompt_tokens,
            "completion": event.completion_tokens,
            "cache_read": event.cache_read_tokens,
            "cache_write": event.cache_write_tokens,
        },
        "tokens_saved": event.tokens_saved,
        "cost_usd": str(event.cost_usd),
        "cost_saved_usd": str(event.cost_saved_usd),
        "prompt_cache_saved_usd": str(event.prompt_cache_saved_usd),
        "latency_ms": event.latency_ms,
    }


def _cursor_path(path: Path) -> Path:
    return path.with_name(path.name + ".cursor")


def read_cursor(path: Path) -> int:
    try:
        return int(_cursor_path(path).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _write_cursor(path: Path, value: int) -> None:
    cursor = _cursor_path(path)
    temporary = cursor.with_name(cursor.name + ".tmp")
    temporary.write_text(str(value))
    os.replace(temporary, cursor)


def rotate(path: Path, backups: int) -> None:
    """``path`` → ``path.1`` → … → ``path.<backups>`` (the oldest dropped)."""
    if backups <= 0:
        path.unlink(missing_ok=True)
        return
    oldest = path.with_name(f"{path.name}.{backups}")
    oldest.unlink(missing_ok=True)
    for n in range(backups - 1, 0, -1):
        source = path.with_name(f"{path.name}.{n}")
        if source.exists():
            os.replace(source, path.with_name(f"{path.name}.{n + 1}"))
    if path.exists():
        os.replace(path, path.with_name(f"{path.name}.1"))


def export_new(config: ExportConfig) -> int:
    """Append the events recorded since the cursor; returns how many lines were written."""
    from billing.models import UsageEvent

    config.path.parent.mkdir(parents=True, exist_ok=True)
    cursor = read_cursor(config.path)
    settled = timezone.now() - timedelta(seconds=SETTLE_SECONDS)
    written = 0
    while True:
        events = list(UsageEvent.objects.filter(pk__gt=cursor, recorded_at__lt=settled).order_by("pk")[:BATCH])
        if not events:
            return written
        if config.path.exists() and config.path.stat().st_size >= config.max_bytes:
            rotate(config.path, config.backups)
        with open(config.path, "ab") as fh:
            for event in events:
                fh.write(orjson.dumps(trajectory_line(event)) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        cursor = events[-1].pk
        _write_cursor(config.path, cursor)
        written += len(events)


def export_trajectories() -> int:
    """The beat task's body: export under a Redis lock (0 when the export is off or another worker runs it)."""
    config = ExportConfig.from_settings()
    if config is None:
        return 0
    try:
        client = sync_client()
        if not client.set(LOCK_KEY, "1", nx=True, ex=LOCK_SECONDS):
            return 0
    except RedisError:
        logger.warning("trajectory export skipped: Redis unavailable")
        return 0
    try:
        count = export_new(config)
    finally:
        client.delete(LOCK_KEY)
    if count:
        logger.info("trajectories exported", extra={"lines": count, "path": str(config.path)})
    return count
