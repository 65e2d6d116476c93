"""Session identity and deployment affinity as steps of a chat request (``routing.sessions``)."""

from __future__ import annotations

from routing import sessions
from routing.resolver import Route
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


async def remember(exchange: Exchange) -> None:
    """Pin the session to the deployment that answered (upstream answers only)."""
    key, deployment = exchange.key, exchange.deployment
    if key is None or deployment is None or not exchange.session or exchange.cache_status in ("HIT", "SEMANTIC"):
        return
    await sessions.pin(key.tenant_id, exchange.session, sessions.Pin(exchange.tier or "", deployment.name))
