"""Long-context routing (seed 001): a deployment whose context window fits is preferred over trimming.

When the prompt does not fit the first deployment of a route (its window less
the output reserve and tool definitions, ``routing.reduction.context_budget``)
but a later deployment of the same route — a fallback with a longer window —
fits it whole, that deployment is tried first, so the conversation is sent
intact instead of trimmed. When none fits, the order stays and trimming (if
on) does its work on the first.
"""

from __future__ import annotations

from typing import Any

from routing.reduction import context_budget
from routing.resolver import Route


def prefer_fitting(route: Route, body: dict[str, Any], prompt_tokens: int) -> Route | None:
    """``route`` with the first deployment that fits ``prompt_tokens`` moved first, or None (pure)."""
    if not route.deployments or prompt_tokens <= context_budget(route.deployments[0], body):
        return None
    for index, deployment in enumerate(route.deployments[1:], start=1):
        if prompt_tokens <= context_budget(deployment, body):
            rest = route.deployments[:index] + route.deployments[index + 1 :]
            return Route(requested=route.requested, tier=route.tier, deployments=(deployment, *rest))
    return None
