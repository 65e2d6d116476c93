"""Session identity, deployment affinity and long-context preference as steps of a chat request.

``routing.sessions`` decides the pin, ``routing.windows`` the long-context order; this module applies
them to the request's exchange and route.
"""

from __future__ import annotations

from routing import sessions, windows
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
