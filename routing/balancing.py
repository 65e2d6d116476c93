"""Load balancing within a tier position: which of several deployments serves a request.

A tier position may hold several deployments (models given the same position,
each with a weight: ``Balance``). Each request goes to one of them, chosen by
the tier's strategy, and the others of that position follow it as its first
fallbacks, before the next position:

- ``weighted``: drawn at random in proportion to the weights, in process. No
  shared state is needed: every process draws with the same weights, so the
  split holds across any number of processes.
- ``least-busy``: the fewest requests in flight per unit of weight, counted in
  Redis across processes (``providers.load``); ties are drawn by weight, so an
  idle position splits like ``weighted``.
- ``latency``: the lowest recent time to first token (a moving average in
  Redis); a deployment without a recent sample goes first, so a slow one is
  measured again once its sample ages out. Ties are drawn by weight.

Everything here is pure: statistics come in as values, randomness from an
injected ``random.Random``. ``routing.resolver`` applies ``weighted`` when it
builds a tier's route; ``serving.failover`` applies the other two with the
statistics it reads from Redis.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gateway_platform.config.snapshot import Balance
from providers.adapters.base import Deployment

if TYPE_CHECKING:
    from routing.resolver import Route

WEIGHTED, LEAST_BUSY, LATENCY = "weighted", "least-busy", "latency"
STRATEGIES = (WEIGHTED, LEAST_BUSY, LATENCY)

Member = tuple[str, int]  # (deployment name, weight)

_rng = random.Random()


def rng() -> random.Random:
    """The process's generator for draws by weight."""
    return _rng


@dataclass(frozen=True, slots=True)
class Pick:
    """One position's choice, as the route reason records it."""

    strategy: str
    chosen: str
    why: str
    candidates: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"strategy": self.strategy, "deployment": self.chosen, "why": self.why, "of": list(self.candidates)}


def balance_of(strategy: str, members: Sequence[tuple[str, int, int]]) -> Balance | None:
    """The ``Balance`` of a tier's ``(name, position, weight)`` members (None when no position is shared)."""
    by_position: dict[int, list[Member]] = {}
    for name, position, weight in members:
        by_position.setdefault(position, []).append((name, weight))
    groups = tuple(
        tuple(sorted(group, key=lambda m: -m[1])) for _, group in sorted(by_position.items()) if len(group) > 1
    )
    return Balance(strategy=strategy, groups=groups) if groups else None


def weighted_order(members: Sequence[Member], rng: random.Random) -> list[str]:
    """The members' names drawn one by one without replacement, each draw in proportion to weight."""
    left = [(name, max(1, weight)) for name, weight in members]
    order: list[str] = []
    while left:
        point = rng.uniform(0, sum(weight for _, weight in left))
        index = len(left) - 1
        for i, (_, weight) in enumerate(left):
            point -= weight
            if point < 0:
                index = i
                break
        order.append(left.pop(index)[0])
    return order


def scored_order(members: Sequence[Member], scores: Mapping[str, float], rng: random.Random) -> list[str]:
    """The members' names by ascending score; equal scores in a weighted-random order."""
    ties = {name: rank for rank, name in enumerate(weighted_order(members, rng))}
    return sorted((name for name, _ in members), key=lambda name: (scores.get(name, 0.0), ties[name]))


def present_groups(deployments: Sequence[Deployment], balance: Balance) -> list[list[Member]]:
    """The groups of ``balance`` with the members still in ``deployments`` (those with two or more)."""
    names = {d.name for d in deployments}
    groups = [[m for m in group if m[0] in names] for group in balance.groups]
    return [group for group in groups if len(group) > 1]


def reorder(deployments: tuple[Deployment, ...], orders: Sequence[Sequence[str]]) -> tuple[Deployment, ...]:
    """``deployments`` with each group's members placed, in the given order, where its first one was."""
    by_name = {d.name: d for d in deployments}
    placed: dict[str, list[str]] = {}
    for order in orders:
        first = next(d.name for d in deployments if d.name in order)
        placed[first] = list(order)
    grouped = {name for order in orders for name in order}
    result: list[Deployment] = []
    for deployment in deployments:
        if deployment.name in placed:
            result.extend(by_name[name] for name in placed[deployment.name])
        elif deployment.name not in grouped:
            result.append(deployment)
    return tuple(result)


def weighted(route: Route, balance: Balance, rng: random.Random | None = None) -> Route:
    """``route`` with each shared position drawn by weight (pure but for ``rng``)."""
    rng = rng or _rng
    groups = present_groups(route.deployments, balance)
    if not groups:
        return route
    orders = [weighted_order(group, rng) for group in groups]
    picks = tuple(
        Pick(WEIGHTED, order[0], _weight_why(group, order[0]), tuple(name for name, _ in group))
        for group, order in zip(groups, orders, strict=True)
    )
    return replace(route, deployments=reorder(route.deployments, orders), picks=picks, balance=balance)


def _weight_why(group: Sequence[Member], chosen: str) -> str:
    weights = dict(group)
    return f"weight {weights[chosen]} of {sum(weights.values())}"


def least_busy(
    route: Route,
    groups: Sequence[Sequence[Member]],
    in_flight: Mapping[str, int],
    first: str | None,
    rng: random.Random | None = None,
) -> Route:
    """``route`` ordered by requests in flight per weight; ``first`` (already counted in Redis) leads group one."""
    rng = rng or _rng
    orders: list[list[str]] = []
    picks: list[Pick] = []
    for index, group in enumerate(groups):
        weights = dict(group)
        scores = {name: in_flight.get(name, 0) / weights[name] for name, _ in group}
        order = scored_order(group, scores, rng)
        if index == 0 and first is not None and first in weights:
            order = [first, *(name for name in order if name != first)]
        counts = ", ".join(f"{name}={in_flight.get(name, 0)}" for name, _ in group)
        why = f"fewest in flight per weight ({counts})"
        picks.append(Pick(LEAST_BUSY, order[0], why, tuple(weights)))
        orders.append(order)
    return replace(route, deployments=reorder(route.deployments, orders), picks=tuple(picks))


def lowest_latency(
    route: Route,
    groups: Sequence[Sequence[Member]],
    ttft_ms: Mapping[str, float | None],
    rng: random.Random | None = None,
) -> Route:
    """``route`` ordered by recent time to first token; a deployment without a recent sample first."""
    rng = rng or _rng
    orders: list[list[str]] = []
    picks: list[Pick] = []
    for group in groups:
        scores = {name: _latency_score(ttft_ms.get(name)) for name, _ in group}
        order = scored_order(group, scores, rng)
        chosen = ttft_ms.get(order[0])
        why = "no recent sample" if chosen is None else f"lowest recent time to first token ({round(chosen)} ms)"
        seen = ", ".join(f"{name}={_ms(ttft_ms.get(name))}" for name, _ in group)
        picks.append(Pick(LATENCY, order[0], f"{why}; {seen}", tuple(name for name, _ in group)))
        orders.append(order)
    return replace(route, deployments=reorder(route.deployments, orders), picks=tuple(picks))


def _latency_score(ms: float | None) -> float:
    return -1.0 if ms is None else ms  # unmeasured first: it must be measured to be compared


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{round(value)}ms"


def header_note(picks: Sequence[Pick]) -> str:
    """``X-Gateway-Route-Reason`` fragment for the first position's choice."""
    if not picks:
        return ""
    return f"balance={picks[0].strategy}:{picks[0].chosen}"
