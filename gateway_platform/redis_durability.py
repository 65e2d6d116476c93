"""Is Redis configured so that what the gateway keeps there survives?

Redis holds the usage stream (records not yet in PostgreSQL), budget and
rate-limit counters and the Celery broker. Two settings decide whether a crash
or memory pressure can lose them: append-only persistence (``appendonly yes``;
without it a crash loses everything since the last snapshot) and no eviction
(``maxmemory-policy noeviction``, or no ``maxmemory``; an ``allkeys-*`` policy
may evict the usage stream itself, a ``volatile-*`` one budget periods). The
check runs with ``manage.py check`` (so before every ``migrate``) as a warning,
an error with ``GATEWAY_REDIS_REQUIRE_DURABLE=1``, and its answer is in
``/health`` for operators. The embedded Redis runs with both settings.
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.core import checks

from gateway_platform.redis_clients import sync_client


def durability_problems(client: redis.Redis) -> list[str]:
    """What is unsafe in this Redis's configuration (empty: nothing)."""
    try:
        config: dict[str, Any] = {}
        for name in ("appendonly", "maxmemory", "maxmemory-policy"):
            config.update({str(k): v for k, v in client.config_get(name).items()})
    except redis.ResponseError as exc:  # managed services may disable CONFIG
        return [f"cannot read the Redis configuration ({exc}); verify appendonly and maxmemory-policy by hand"]
    problems = []
    if str(config.get("appendonly", "no")) != "yes":
        problems.append("appendonly is off: a Redis crash loses queued usage records and budget counters")
    policy = str(config.get("maxmemory-policy", "noeviction"))
    if int(config.get("maxmemory", 0) or 0) and policy != "noeviction":
        problems.append(
            f"maxmemory-policy is {policy}: under memory pressure Redis may evict the usage stream or budget "
            "counters; use noeviction"
        )
    return problems


def check_redis_durability(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Django system check (registered by the billing app)."""
    try:
        problems = durability_problems(sync_client())
    except redis.RedisError:
        return []  # Redis unreachable: /health says so; nothing to judge here
    level = checks.Error if settings.GATEWAY.get("REDIS_REQUIRE_DURABLE") else checks.Warning
    return [
        level(problem, hint="See the README, 'Billing guarantees'.", id=f"gateway.{level.__name__[0]}00{n}")
        for n, problem in enumerate(problems, 1)
    ]
