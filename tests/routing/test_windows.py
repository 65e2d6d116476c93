"""Long-context routing: a deployment whose window fits goes first instead of trimming (pure)."""

from __future__ import annotations

from dataclasses import replace

from routing.resolver import Route
from routing.windows import prefer_fitting
from tests.routing import memory_snapshot as mem


def test_a_longer_window_later_in_the_route_goes_first_only_when_needed() -> None:
    small = replace(mem.deployment("small", 1), context_window=16_000)
    large = replace(mem.deployment("large", 2), context_window=200_000)
    route = Route(requested="code_gen", tier="code_gen", deployments=(small, large))
    assert prefer_fitting(route, {}, 5_000) is None  # fits the first: nothing changes
    moved = prefer_fitting(route, {}, 60_000)
    assert moved is not None and [d.name for d in moved.deployments] == ["large", "small"]
    assert prefer_fitting(route, {}, 500_000) is None  # fits none: trimming does its work on the first
    # The requested output counts against the window.
    assert prefer_fitting(route, {"max_tokens": 15_000}, 1_000) is not None
