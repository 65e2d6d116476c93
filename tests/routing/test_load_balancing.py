"""Load balancing within a tier position, through the gateway against the mock upstream.

Three weighted deployments share the traffic in the configured split; ``least-busy``
counts requests in flight across the gateway in Redis; ``latency`` moves traffic to
the deployment with the lowest recent time to first token.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter

import aiohttp
import openai
import pytest

from gateway_platform.redis_clients import sync_client
from providers.circuit import _ACQUIRE
from providers.load import _CHOOSE
from providers.models import Model
from routing.models import Tier, TierModel
from tests.factories import make_key, make_model, make_provider, make_team
from tests.serving.redis_monitor import RedisMonitor

pytestmark = pytest.mark.django_db(transaction=True)

NO_STORE = {"X-Gateway-Cache": "no-store"}


def balanced_tier(name: str, strategy: str, members: list[tuple[Model, int]], *, fallback: Model | None = None) -> Tier:
    tier = Tier.objects.create(name=name, balancing=strategy)
    for model, weight in members:
        TierModel.objects.create(tier=tier, model=model, position=0, weight=weight)
    if fallback is not None:
        TierModel.objects.create(tier=tier, model=fallback, position=1)
    return tier


async def _ask_many(url: str, secret: str, tier: str, count: int, concurrency: int, text: str) -> list[dict[str, str]]:
    """``count`` chat requests, ``concurrency`` at a time; the gateway headers of each answer."""
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {secret}", **NO_STORE}

    async with aiohttp.ClientSession() as session:

        async def one(index: int) -> dict[str, str]:
            body = {"model": tier, "messages": [{"role": "user", "content": f"{text} #{index}"}], "max_tokens": 8}
            async with gate, session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, await resp.text()
                return {k.lower(): v for k, v in resp.headers.items()}

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_three_weighted_deployments_share_the_traffic_in_the_configured_split(mock_upstream_url, gateway_url):
    provider = make_provider(f"{mock_upstream_url}/v1", name="lb-mock")
    weights = {"gpt-east": 5, "gpt-west": 3, "gpt-north": 2}
    models = [(make_model(provider, name=name, upstream_model=f"up-{name}"), w) for name, w in weights.items()]
    balanced_tier("spread", "weighted", models)
    secret = make_key(make_team())[1]
    total = 600

    answers = asyncio.run(_ask_many(gateway_url, secret, "spread", total, 12, "spread me"))

    served = Counter(headers["x-gateway-model"] for headers in answers)
    assert set(served) == set(weights)
    expected = {name: total * weight / 10 for name, weight in weights.items()}
    # Pearson's chi-square with 2 degrees of freedom: above 18.42 has a probability of 1e-4 for a fair split.
    chi_square = sum((served[name] - expected[name]) ** 2 / expected[name] for name in weights)
    assert chi_square < 18.42, served
    for name, weight in weights.items():
        assert served[name] / total == pytest.approx(weight / 10, abs=0.06), served
    reasons = Counter(headers["x-gateway-route-reason"] for headers in answers)
    assert set(reasons) == {f"balance=weighted:{name}" for name in weights}


def test_least_busy_spreads_requests_in_flight_by_weight_and_releases_them(mock_upstream_url, gateway_url):
    provider = make_provider(f"{mock_upstream_url}/v1", name="busy-mock")
    big = make_model(provider, name="big-pool", upstream_model="up-big")
    small = make_model(provider, name="small-pool", upstream_model="up-small")
    balanced_tier("busy", "least-busy", [(big, 3), (small, 1)])
    secret = make_key(make_team())[1]

    # Eight slow requests at once: each is counted in flight when routed, so the counts per weight
    # stay level (3:1) whatever order they arrive in.
    answers = asyncio.run(_ask_many(gateway_url, secret, "busy", 8, 8, "hold [[mock: delay=1.5]]"))

    assert Counter(headers["x-gateway-model"] for headers in answers) == {"big-pool": 6, "small-pool": 2}
    assert all(h["x-gateway-route-reason"].startswith("balance=least-busy:") for h in answers)
    # Every request left the in-flight counts with its usage record.
    client = sync_client()
    assert client.zcard("lb:busy:big-pool") == 0 and client.zcard("lb:busy:small-pool") == 0


def test_least_busy_counts_requests_another_process_has_in_flight(mock_upstream_url, gateway_url):
    provider = make_provider(f"{mock_upstream_url}/v1", name="busy2-mock")
    first = make_model(provider, name="first-pool", upstream_model="up-first")
    second = make_model(provider, name="second-pool", upstream_model="up-second")
    balanced_tier("busy2", "least-busy", [(first, 1), (second, 1)])
    client = sync_client()
    # Two requests of another gateway process are in flight on the first pool (what its routing wrote).
    now = client.time()[0]
    client.zadd("lb:busy:first-pool", {"other-process-1": now, "other-process-2": now})
    gateway = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(make_team())[1], max_retries=0)

    raw = gateway.chat.completions.with_raw_response.create(
        model="busy2", messages=[{"role": "user", "content": "who is free?"}], extra_headers=NO_STORE
    )

    assert raw.headers["x-gateway-model"] == "second-pool"
    assert raw.headers["x-gateway-route-reason"] == "balance=least-busy:second-pool"
    assert client.zcard("lb:busy:first-pool") == 2  # the other process's entries are its own to remove
    client.delete("lb:busy:first-pool")


def test_latency_sends_traffic_to_the_lowest_recent_time_to_first_token(mock_upstream_url, gateway_url, drained_events):
    provider = make_provider(f"{mock_upstream_url}/v1", name="lat-mock")
    slow = make_model(provider, name="slow-region", upstream_model="up-slow")
    fast = make_model(provider, name="fast-region", upstream_model="up-fast")
    balanced_tier("quick", "latency", [(slow, 1), (fast, 1)])
    key, secret = make_key(make_team())
    client = sync_client()
    client.delete("lb:ttft:slow-region", "lb:ttft:fast-region")
    gateway = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0)

    def ask(index: int) -> str:
        text = f"turn {index} [[mock: model=up-slow ttft=0.5]] {uuid.uuid4().hex}"
        with gateway.chat.completions.with_streaming_response.create(
            model="quick", messages=[{"role": "user", "content": text}], stream=True, extra_headers=NO_STORE
        ) as response:
            for _ in response.iter_lines():
                pass
            return response.headers["x-gateway-model"]

    served = [ask(i) for i in range(6)]

    # Neither had a sample: the first two requests measure one each, then the faster one takes the traffic.
    assert set(served[:2]) == {"slow-region", "fast-region"}
    assert served[2:] == ["fast-region"] * 4
    slow_ms, fast_ms = (float(client.get(f"lb:ttft:{name}")) for name in ("slow-region", "fast-region"))
    assert slow_ms >= 500 > fast_ms
    events = drained_events(6, api_key_id=key.pk)
    last = events[-1].route_reason["balance"][0]
    assert last["strategy"] == "latency" and last["deployment"] == "fast-region"
    assert last["why"].startswith("lowest recent time to first token")


def test_a_failing_deployment_of_a_position_fails_over_to_its_neighbour(mock_upstream_url, gateway_url):
    provider = make_provider(f"{mock_upstream_url}/v1", name="fo-mock")
    broken = make_model(provider, name="broken-pool", upstream_model="up-broken")
    healthy = make_model(provider, name="healthy-pool", upstream_model="up-healthy")
    backup = make_model(provider, name="backup-model", upstream_model="up-backup")
    balanced_tier("pair", "weighted", [(broken, 1), (healthy, 1)], fallback=backup)
    secret = make_key(make_team())[1]

    answers = asyncio.run(
        _ask_many(gateway_url, secret, "pair", 10, 2, "[[mock: model=up-broken status=500]] still answered")
    )

    # Whichever was drawn, the healthy member of the position answers before the next position is tried.
    assert {headers["x-gateway-model"] for headers in answers} == {"healthy-pool"}


def test_weighted_balancing_adds_no_redis_command_and_least_busy_one_call_plus_the_release(
    mock_upstream_url, gateway_url
):
    def sha(source: str) -> str:
        return hashlib.sha1(source.encode()).hexdigest()

    provider = make_provider(f"{mock_upstream_url}/v1", name="rt-lb-mock")
    models = [make_model(provider, name=f"rt-lb-{i}", upstream_model=f"up-rt-{i}") for i in range(4)]
    balanced_tier("rt_weighted", "weighted", [(models[0], 2), (models[1], 1)])
    balanced_tier("rt_busy", "least-busy", [(models[2], 1), (models[3], 1)])
    gateway = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(make_team())[1], max_retries=0)

    def ask(tier: str, count: int) -> None:
        for n in range(count):
            gateway.chat.completions.create(
                model=tier, messages=[{"role": "user", "content": f"round trip {n}"}], extra_headers=NO_STORE
            )

    ask("rt_weighted", 1)
    ask("rt_busy", 1)  # warm up: scripts loaded, snapshot current
    with RedisMonitor() as weighted:
        ask("rt_weighted", 4)
    with RedisMonitor() as busy:
        ask("rt_busy", 4)

    # Drawn in process before admission: the breaker admission read is the chosen one's; nothing else.
    assert weighted.count(sha(_CHOOSE)) == 0 and weighted.count('"ZREM"') == 0
    assert weighted.count(sha(_ACQUIRE)) == 0
    # One round trip counts, claims and reads the candidates' breakers; the release rides on the usage
    # record's batch; the chosen deployment's closed breaker needs no call of its own.
    assert busy.count(sha(_CHOOSE)) == 4
    assert busy.count(sha(_ACQUIRE)) == 0
    assert busy.count('"ZREM" "lb:busy:rt-lb-') == 4
