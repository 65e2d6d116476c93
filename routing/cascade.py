"""Cascade planning (seed 002, FrugalGPT style): which cheaper tier to try first, and the bar it must clear.

A request routed to a tier that has a cheaper one (among the tiers the tenant
sees) may be tried on the cheaper tier first when the tenant's policy has the
cascade on. "Next cheaper" is the tier with the next lower complexity band
(``complexity_max``); for a tier without a band, the one with the next lower
``max_cost_per_million``. No cascade when there is no such tier, the key may
not use it, or it would call the same model.

This module only plans (pure functions over the snapshot). Executing the plan
(holding the cheap answer, judging it, escalating) is ``serving.cascade``;
storing the decisions is ``routing.outcomes``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway_platform.config.snapshot import KeyInfo, TierInfo
from routing.quality import Question, question_from_messages
from routing.reduction.common import message_text, role
from routing.resolver import Route, balanced

# Where the decision rides on the usage record: ``route_reason[DECISION_KEY]``.
DECISION_KEY = "cascade"


@dataclass(frozen=True, slots=True)
class CascadePlan:
    """A request's cascade: the cheaper tier to try and what its answer must reach."""

    requested_tier: str
    cheap_tier: str
    cheap_route: Route
    threshold: float
    question: Question
    query_hash: str


def cheaper_tier(tiers: Mapping[str, TierInfo], name: str) -> TierInfo | None:
    """The next cheaper tier than ``name`` (by band, else by max cost per million), if any."""
    current = tiers.get(name)
    if current is None:
        return None
    others = [t for t in tiers.values() if t.name != name and t.deployments]
    if current.complexity_max is not None:
        bands = [t for t in others if t.complexity_max is not None and t.complexity_max < current.complexity_max]
        return max(bands, key=lambda t: (t.complexity_max, t.name), default=None)
    if current.max_cost_per_million is not None:
        ceiling = current.max_cost_per_million
        cheaper = [t for t in others if t.max_cost_per_million is not None and t.max_cost_per_million < ceiling]
        return max(cheaper, key=lambda t: (t.max_cost_per_million, t.name), default=None)
    return None


def query_hash(messages: Sequence[Any]) -> str:
    """SHA-256 of the conversation's roles and whitespace-normalised text (for grouping outcomes)."""
    normal = [[role(m), " ".join(message_text(m).split())] for m in messages if isinstance(m, dict)]
    return hashlib.sha256(orjson.dumps(normal)).hexdigest()


def plan_cascade(
    tiers: Mapping[str, TierInfo],
    key: KeyInfo,
    route: Route,
    *,
    enabled: bool,
    threshold: float,
    messages: Sequence[Any],
    complexity: float | None = None,
) -> CascadePlan | None:
    """The cascade for a request routed to ``route`` (None when it does not apply)."""
    if not enabled or route.tier is None or not route.deployments:
        return None
    cheap = cheaper_tier(tiers, route.tier)
    if cheap is None or not key.may_use(cheap.name) or cheap.deployments[0] == route.deployments[0]:
        return None
    return CascadePlan(
        requested_tier=route.tier,
        cheap_tier=cheap.name,
        cheap_route=balanced(
            Route(requested=route.requested, tier=cheap.name, deployments=cheap.deployments), cheap.balance
        ),
        threshold=threshold,
        question=question_from_messages(messages, complexity),
        query_hash=query_hash(messages),
    )
