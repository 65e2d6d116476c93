"""Choosing a chat request's route: its skill, then `auto` scoring, a forced tier or what it named.

``plan_route`` is the one call the chat flow makes: it applies the requested
skill (prompt prepended; a 400 listing the available skills if unknown),
decides the tier — the skill's forced tier for ``auto`` or a tier name, the
complexity score for ``auto`` (``routing.scoring``), the middle band when
smart routing is off — and records the decision on the exchange
(``route_reason`` for the usage event, ``X-Gateway-Route-Reason``). A concrete
model (or ``provider:model``) is the client's explicit choice and is kept; a
skill's prompt still applies. Everything comes from the snapshot: no query.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway_platform.config.snapshot import KeyInfo, Snapshot
from gateway_platform.errors import invalid_request
from routing.aliases import ALIAS_HEADER, find_alias
from routing.policies import routing_policy
from routing.resolver import AUTO, Route, default_auto_tier, local_first, no_auto_tier, resolve, tier_route
from routing.scoring import NoTierAllowed, RouteDecision
from routing.skills import SkillInfo, find_skill, requested_skill, with_skill
from routing.tier_views import TierView, tiers_for
from serving.exchange import Exchange
from serving.requests import ChatRequest

logger = logging.getLogger(__name__)

SMART_ROUTING_HEADER = b"x-gateway-smart-routing"
_ON = frozenset({"1", "true", "on", "yes"})
_OFF = frozenset({"0", "false", "off", "no"})


def smart_routing(headers: Mapping[bytes, bytes], body_value: bool | None) -> bool:
    """Whether `auto` scores this request: the ``"smart_routing"`` body field, else the header, else on."""
    if body_value is not None:
        return body_value
    raw = headers.get(SMART_ROUTING_HEADER)
    if raw is None:
        return True
    value = raw.decode("latin-1").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise invalid_request("The X-Gateway-Smart-Routing header must be 1 or 0.", param="X-Gateway-Smart-Routing")


def plan_route(exchange: Exchange, snapshot: Snapshot, key: KeyInfo, request: ChatRequest) -> Route:
    """Apply the request's skill and choose its route (errors are 400 ``GatewayError``s).

    A model name that is an alias (``routing.aliases``) is replaced by its target
    first; ``X-Gateway-Alias`` says what it resolved to. Sets ``request.model``
    (alias), ``request.body`` (skill prompt), ``exchange.skill``,
    ``exchange.route_reason`` and ``exchange.route_header``.
    """
    view = tiers_for(snapshot, key.tenant_id)
    alias = find_alias(snapshot, key.tenant_id, request.model, view.tiers.keys()) if request.provider is None else None
    if alias is not None:  # a client's own name (claude-*, gpt-*-codex, sonnet) → a model, tier or auto
        exchange.extra_headers[ALIAS_HEADER] = alias.target
        request.model = alias.target
    slug = requested_skill(exchange.request_headers, request.skill)
    skill = find_skill(snapshot, key.tenant_id, slug, key.may_use) if slug else None
    routed = request.provider is None and (request.model == AUTO or request.model in view.tiers)
    decision: RouteDecision | None = None
    policy = routing_policy(snapshot, key.tenant_id)
    if routed and skill is not None and skill.forced_tier:
        decision = _forced(view, key, skill)
    if decision is None and routed and request.model == AUTO:
        decision = _auto(view, key, request, exchange.request_headers, policy.strategy)
    if decision is not None:
        route = tier_route(snapshot, key, view.tiers[decision.tier], requested=request.model)
    else:
        route = resolve(snapshot, key, request.model, request.provider)
    if policy.strategy == "local_first" and route.tier and view.is_lowest_band(route.tier):
        route = local_first(snapshot, route)
    if skill is not None:
        request.body = with_skill(request.body, skill)
        exchange.skill = skill.slug
    if decision is not None:
        exchange.route_reason = {**decision.as_dict(), "skill": exchange.skill}
        exchange.route_header = decision.header()
    if alias is not None:
        exchange.route_reason = {**exchange.route_reason, "alias": alias.pattern, "alias_target": alias.target}
    return route


def _forced(view: TierView, key: KeyInfo, skill: SkillInfo) -> RouteDecision | None:
    tier = view.tiers.get(skill.forced_tier)
    if tier is None:
        # An admin typo must not break every request using the skill: route as if none was forced.
        logger.warning("skill forces an unknown tier", extra={"skill": skill.slug, "tier": skill.forced_tier})
        return None
    if not key.may_use(tier.name):
        raise invalid_request(
            f"The skill '{skill.slug}' routes to the tier '{tier.name}', which this API key may not use.",
            param="skill",
            code="model_not_allowed",
        )
    return RouteDecision(tier=tier.name, reason=f"skill:{skill.slug}")


def _auto(
    view: TierView, key: KeyInfo, request: ChatRequest, headers: Mapping[bytes, bytes], strategy: str
) -> RouteDecision:
    if not smart_routing(headers, request.smart_routing):
        tier = default_auto_tier(view, key)
        return RouteDecision(tier=tier.name, reason="smart_routing_off", strategy=strategy)
    try:
        return view.scorer.decide(request.body, allowed=key.may_use, strategy=strategy, facts=request.facts())
    except NoTierAllowed:
        raise no_auto_tier(view) from None
