"""The production topology as local processes: exactly the roles docker-compose.yml runs.

``migrate`` once, two ``serve`` instances, one ``worker`` and one ``beat``, all started with
``python -m gateway_platform <role>`` in production mode (no GATEWAY_LOCAL) against the test
PostgreSQL and Redis given by URL. Traffic goes through both web instances; what must be shared
is: rate limits, circuits, the response cache, configuration changes, and usage drained into
PostgreSQL exactly once by the worker (this test never drains itself).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest

from billing.models import UsageEvent
from caching.models import CachePolicy
from gateway_platform.redis_clients import sync_client
from tests.conftest import BASE_DIR, free_port, server_env, stop_process, wait_for_http
from tests.deploy.deploy_files import compose
from tests.factories import make_budget, make_key, make_model, make_provider, make_team, make_tier

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Topology:
    webs: list[str]
    processes: dict[str, subprocess.Popen[bytes]]


def _role_env(tmp: Path) -> dict[str, str]:
    env = server_env(
        DJANGO_SECRET_KEY="topology-" + "x" * 40,
        GATEWAY_WEB_WORKERS="1",
        CELERY_CONCURRENCY="1",
        CELERY_LOG_LEVEL="WARNING",
        GATEWAY_BEAT_SCHEDULE_FILE=str(tmp / "celerybeat-schedule"),
        GATEWAY_USAGE_DRAIN_SECONDS="0.5",
        GATEWAY_SEED_DEFAULTS="false",
        GATEWAY_CIRCUIT_FAILURES="2",
        GATEWAY_CIRCUIT_RESET_SECONDS="600",
        GATEWAY_RETRIES_PER_DEPLOYMENT="0",
    )
    for name in ("GATEWAY_LOCAL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def topology(
    django_db_setup: None, django_db_blocker: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    env = _role_env(tmp_path_factory.mktemp("topology"))
    roles = {name: service["command"][0] for name, service in compose()["services"].items() if "command" in service}
    roles = {name: role for name, role in roles.items() if role in ("migrate", "serve", "worker", "beat")}
    assert sorted(roles.values()) == ["beat", "migrate", "serve", "serve", "worker"]
    subprocess.run(
        [sys.executable, "-m", "gateway_platform", "migrate"], cwd=BASE_DIR, env=env, check=True, timeout=120
    )
    processes: dict[str, subprocess.Popen[bytes]] = {}
    webs = []
    try:
        for name, role in roles.items():
            if role == "migrate":
                continue
            port = free_port()
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "gateway_platform", role], cwd=BASE_DIR, env={**env, "PORT": str(port)}
            )
            if role == "serve":
                webs.append(f"http://127.0.0.1:{port}")
        for url, name in zip(webs, [n for n, r in roles.items() if r == "serve"], strict=True):
            wait_for_http(f"{url}/live", timeout=60, proc=processes[name])
        yield Topology(webs=webs, processes=processes)
    finally:
        for proc in processes.values():
            stop_process(proc)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def chat(url: str, secret: str, model: str, content: str) -> httpx2.Response:
    return httpx2.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": model, "messages": [{"role": "user", "content": content}], "temperature": 0},
        timeout=30,
    )


def test_two_web_instances_share_limits_circuits_cache_config_and_usage(topology, mock_upstream_url):
    a, b = topology.webs
    team = make_team("topo")
    provider = make_provider(f"{mock_upstream_url}/v1", name="topo-mock")
    make_model(provider, name="topo-model", upstream_model="topo-upstream")
    make_model(provider, name="topo-flaky", upstream_model="topo-flaky-upstream")

    # Rate limit: 3 requests a minute for the key, wherever they land.
    _, limited = make_key(team, rpm_limit=3)
    statuses = [chat(url, limited, "topo-model", f"limit {i}").status_code for i, url in enumerate([a, b, a, b])]
    assert statuses == [200, 200, 200, 429]

    # Circuit: two failures through A open it; B then skips the deployment (503, no upstream call).
    _, secret = make_key(team)
    for _ in range(2):
        assert chat(a, secret, "topo-flaky", "[[mock: status=500]]").status_code == 502
    shut = chat(b, secret, "topo-flaky", "fine now")
    assert shut.status_code == 503 and shut.json()["error"]["code"] == "no_healthy_deployment"

    # Cache: an answer given by A is a HIT on B.
    CachePolicy.objects.create(tenant=None, embedder=CachePolicy.Embedder.NONE, semantic_enabled=False)
    assert chat(a, secret, "topo-model", "cache me across instances").headers["x-gateway-cache"] == "MISS"
    for _ in range(20):
        hit = chat(b, secret, "topo-model", "cache me across instances")
        if hit.headers["x-gateway-cache"] == "HIT":
            break
        time.sleep(0.25)
    assert hit.headers["x-gateway-cache"] == "HIT"

    # Configuration: a tier added now is served by both instances on their next request.
    make_tier("topo_tier", [provider.models.get(name="topo-model")])
    for url in (a, b):
        response = chat(url, secret, "topo_tier", f"tier via {url}")
        assert response.status_code == 200 and response.headers["x-gateway-tier"] == "topo_tier"

    # Budget: spend through B counts on A. One request's cost c is stored (drained by the worker), then a
    # hard budget of 1.5 c: the next requests (B, then A) cannot both pass, and A refuses after B spent.
    priced = make_model(
        provider, name="topo-priced", upstream_model="topo-priced-up", input_cost="100000", output_cost="0"
    )
    payer, paying = make_key(team)
    first = chat(a, paying, priced.name, "budget one")
    cost = Decimal(first.headers["x-gateway-cost-usd"])
    assert cost > 0
    wait_until(lambda: UsageEvent.objects.filter(api_key=payer).count() == 1)
    make_budget(str((cost * Decimal("1.5")).quantize(Decimal("0.0001"))), api_key=payer, action="block")
    via_b, via_a = chat(b, paying, priced.name, "budget two"), chat(a, paying, priced.name, "budget three")
    assert via_a.status_code == 429 and via_a.json()["error"]["code"] == "budget_exceeded", (via_b.text, via_a.text)

    # Usage: every request above is stored once, by the worker (beat schedules the drain).
    expected = 4 + 3 + 2 + 2 + 3  # limited (429 included), circuit, cache (at least), tier, budget
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = list(UsageEvent.objects.filter(team=team).values_list("request_id", flat=True))
        if len(events) >= expected and not sync_client().xlen("gateway:usage"):
            break
        time.sleep(0.3)
    assert len(events) >= expected
    assert len(events) == len(set(events))  # drained once
    assert all(proc.poll() is None for proc in topology.processes.values())
