"""Load balancing within a tier position: the pure choices (routing.balancing) and the resolver's use of them."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from gateway_platform.config.snapshot import Balance, KeyInfo, Snapshot, TierInfo
from providers.adapters.base import Deployment, ProviderConfig
from routing import balancing
from routing.resolver import Route, resolve

PROVIDER = ProviderConfig(
    id=1,
    name="p",
    kind="openai",
    base_url="http://x/v1",
    api_key=None,
    connect_timeout=1,
    read_timeout=1,
    total_timeout=1,
    max_connections=1,
)


def deployment(name: str) -> Deployment:
    return Deployment(
        model_id=hash(name) % 1000,
        name=name,
        upstream_model=name,
        provider=PROVIDER,
        input_cost_per_million=Decimal(1),
        output_cost_per_million=Decimal(2),
        context_window=8000,
        max_output_tokens=None,
    )


EAST, WEST, NORTH, BACKUP = (deployment(n) for n in ("east", "west", "north", "backup"))
KEY = KeyInfo(
    id=1,
    name="k",
    prefix="gw-",
    team_id=1,
    team_slug="t",
    tenant_id=1,
    tenant_slug="t",
    tenant_active=True,
    allowed_models=frozenset(),
    expires_at=None,
    revoked=False,
    rpm_limit=None,
    tpm_limit=None,
)


def route_of(*deployments: Deployment) -> Route:
    return Route(requested="code", tier="code", deployments=deployments)


def test_it_groups_only_positions_with_several_models_heaviest_first():
    balance = balancing.balance_of("weighted", [("a", 0, 1), ("b", 0, 3), ("c", 1, 1), ("d", 2, 2), ("e", 2, 2)])
    assert balance == Balance("weighted", ((("b", 3), ("a", 1)), (("d", 2), ("e", 2))))
    assert balancing.balance_of("weighted", [("a", 0, 1), ("c", 1, 5)]) is None


def test_it_draws_by_weight_within_a_few_percent():
    rng = random.Random(7)
    members = [("east", 5), ("west", 3), ("north", 2)]
    firsts = Counter(balancing.weighted_order(members, rng)[0] for _ in range(20_000))
    for name, weight in members:
        assert firsts[name] / 20_000 == pytest.approx(weight / 10, abs=0.02)


def test_a_weighted_route_puts_the_position_first_then_its_others_then_the_next_position():
    balance = Balance("weighted", ((("east", 5), ("west", 3), ("north", 2)),))
    seen = Counter()
    for seed in range(300):
        routed = balancing.weighted(route_of(EAST, WEST, NORTH, BACKUP), balance, random.Random(seed))
        assert set(routed.deployments[:3]) == {EAST, WEST, NORTH} and routed.deployments[3] == BACKUP
        assert routed.picks[0].chosen == routed.deployments[0].name
        seen[routed.deployments[0].name] += 1
    assert set(seen) == {"east", "west", "north"}
    pick = balancing.weighted(route_of(EAST, WEST, NORTH), balance, random.Random(1)).picks[0]
    assert pick.why == f"weight {dict(balance.groups[0])[pick.chosen]} of 10"


def test_a_position_left_with_one_model_is_not_balanced():
    balance = Balance("weighted", ((("east", 5), ("west", 3)),))
    routed = balancing.weighted(route_of(EAST, BACKUP), balance, random.Random(1))
    assert routed.deployments == (EAST, BACKUP) and routed.picks == ()


def test_least_busy_takes_the_fewest_in_flight_per_weight():
    groups = [[("east", 3), ("west", 1)]]
    routed = balancing.least_busy(route_of(EAST, WEST, BACKUP), groups, {"east": 5, "west": 2}, None)
    assert [d.name for d in routed.deployments] == ["east", "west", "backup"]  # 5/3 < 2/1
    routed = balancing.least_busy(route_of(EAST, WEST, BACKUP), groups, {"east": 7, "west": 2}, None)
    assert [d.name for d in routed.deployments] == ["west", "east", "backup"]
    assert routed.picks[0].why == "fewest in flight per weight (east=7, west=2)"


def test_least_busy_keeps_the_deployment_redis_counted_the_request_on():
    groups = [[("east", 1), ("west", 1)]]
    routed = balancing.least_busy(route_of(EAST, WEST), groups, {"east": 0, "west": 0}, "west")
    assert routed.deployments[0] == WEST and routed.picks[0].chosen == "west"


def test_latency_takes_the_fastest_and_tries_an_unmeasured_one_first():
    groups = [[("east", 1), ("west", 1), ("north", 1)]]
    routed = balancing.lowest_latency(
        route_of(EAST, WEST, NORTH), groups, {"east": 300.0, "west": 80.0, "north": 120.0}
    )
    assert [d.name for d in routed.deployments] == ["west", "north", "east"]
    assert routed.picks[0].why.startswith("lowest recent time to first token (80 ms)")
    routed = balancing.lowest_latency(route_of(EAST, WEST, NORTH), groups, {"east": 300.0, "west": 80.0, "north": None})
    assert routed.deployments[0] == NORTH and routed.picks[0].why.startswith("no recent sample")


def test_the_resolver_draws_weighted_positions_and_leaves_the_others_to_failover():
    def snapshot(strategy: str) -> Snapshot:
        balance = Balance(strategy, ((("east", 1), ("west", 1)),))
        tier = TierInfo(
            id=1, name="code", description="", capabilities=(), deployments=(EAST, WEST, BACKUP), balance=balance
        )
        models = {d.name: d for d in (EAST, WEST, BACKUP)}
        return Snapshot(version=1, models=models, tiers={"code": tier}, providers={}, local_fallback=None)

    weighted = resolve(snapshot("weighted"), KEY, "code")
    assert weighted.picks and weighted.picks[0].chosen == weighted.deployments[0].name
    pending = resolve(snapshot("least-busy"), KEY, "code")
    assert pending.picks == () and pending.balance is not None and pending.deployments == (EAST, WEST, BACKUP)
    assert resolve(snapshot("weighted"), KEY, "east").picks == ()  # a concrete model is the client's choice
