"""Session identity, deployment affinity and long-context preference as steps of a chat request.

``routing.sessions`` decides the pin, ``routing.windows`` the long-context order; this module applies
them to the request's exchange and route.
"""

from __future__ import annotations

from gateway_platform.config.snapshot import KeyInfo, Snapshot
from routing import sessions, windows
from routing.resolver import AUTO, Route, tier_route
from routing.tier_views import tiers_for
from serving.chat_plan import ChatPlan
from serving.exchange import Exchange

RESPONSES_ENDPOINT = "responses"


def identify(exchange: Exchange, body: dict[str, object], raw: bytes) -> None:
    """Set ``exchange.session`` from the request (the Responses translation drops the fields: read raw)."""
    session = sessions.session_from(body, exchange.request_headers)
    if not session and exchange.endpoint.startswith(RESPONSES_ENDPOINT):
        session = sessions.session_from_raw(raw, exchange.request_headers)
    exchange.session = session


async def keep(exchange: Exchange, route: Route, plan: ChatPlan) -> Route:
    """The route with the session's pinned deployment first; the cascade is skipped to keep its cache."""
    key = exchange.key
    if key is None or not exchange.session:
        return route
    pinned_route = sessions.apply_pin(route, await sessions.pinned(key.tenant_id, exchange.session))
    if pinned_route is None:
        return route
    deployment = pinned_route.deployments[0].name
    plan.cascade = None
    exchange.route_reason = {**exchange.route_reason, "affinity": deployment}
    note = f"affinity={deployment}"
    exchange.route_header = f"{exchange.route_header}; {note}" if exchange.route_header else note
    return pinned_route


async def sticky_auto(exchange: Exchange, snapshot: Snapshot, key: KeyInfo, model: str, route: Route) -> Route:
    """``auto`` within a session keeps the session's tier unless the request scores a higher band.

    A tier change moves the session to another deployment and a cold prompt cache; escalation
    (a harder turn) goes through, a lighter turn stays where the session's cache is.
    """
    if model != AUTO or not exchange.session or route.tier is None:
        return route
    pin = await sessions.pinned(key.tenant_id, exchange.session)
    if pin is None or pin.tier == route.tier or not key.may_use(pin.tier):
        return route
    view = tiers_for(snapshot, key.tenant_id)
    bands = [tier.name for tier in view.bands]
    if pin.tier not in bands or route.tier not in bands or bands.index(route.tier) > bands.index(pin.tier):
        return route
    sticky = tier_route(snapshot, key, view.tiers[pin.tier], requested=route.requested)
    exchange.tier = sticky.tier
    exchange.route_reason = {**exchange.route_reason, "session_tier": pin.tier, "scored_tier": route.tier}
    note = f"session_tier={pin.tier}"
    exchange.route_header = f"{exchange.route_header}; {note}" if exchange.route_header else note
    return sticky


def fit_window(exchange: Exchange, route: Route, body: dict[str, object], prompt_tokens: int) -> Route:
    """Long-context routing: a deployment of the route whose window holds the prompt goes first."""
    fitting = windows.prefer_fitting(route, body, prompt_tokens)
    if fitting is None:
        return route
    deployment = fitting.deployments[0].name
    exchange.route_reason = {**exchange.route_reason, "long_context": deployment}
    note = f"long_context={deployment}"
    exchange.route_header = f"{exchange.route_header}; {note}" if exchange.route_header else note
    return fitting


async def remember(exchange: Exchange) -> None:
    """Pin the session to the deployment that answered (upstream answers only)."""
    key, deployment = exchange.key, exchange.deployment
    if key is None or deployment is None or not exchange.session or exchange.cache_status in ("HIT", "SEMANTIC"):
        return
    await sessions.pin(key.tenant_id, exchange.session, sessions.Pin(exchange.tier or "", deployment.name))
