"""Session identity from what clients send, and the affinity pin applied to a route (pure)."""

from __future__ import annotations

import pytest

from routing.resolver import Route
from routing.sessions import Pin, apply_pin, prompt_cache_key, session_from, session_from_raw
from tests.routing import memory_snapshot as mem


@pytest.mark.parametrize(
    ("body", "headers", "session"),
    [
        ({"user": "u", "prompt_cache_key": "pck"}, {b"x-gateway-session": b"explicit"}, "explicit"),
        ({"user": "u", "prompt_cache_key": "pck"}, {}, "pck"),
        ({"user": "u", "client_metadata": {"session_id": "codex-1"}}, {}, "codex-1"),
        ({"metadata": {"user_id": "user_ab_account_cd_session_ef"}}, {}, "user_ab_account_cd_session_ef"),
        ({"user": "alice"}, {}, "alice"),
        ({"user": 7, "prompt_cache_key": ["not", "a", "string"]}, {}, "7"),
        ({}, {}, ""),
    ],
)
def test_the_session_comes_from_what_the_client_sends(body, headers, session) -> None:
    assert session_from(body, headers) == session


def test_raw_bodies_and_long_ids() -> None:
    assert session_from_raw(b'{"prompt_cache_key": "abc"}', {}) == "abc"
    assert session_from_raw(b"not json", {}) == ""
    assert len(session_from({"user": "x" * 500}, {})) == 200
    assert prompt_cache_key(1, "s") != prompt_cache_key(2, "s") and "s" not in prompt_cache_key(1, "s")


def test_a_pin_moves_its_deployment_first_only_within_the_same_tier() -> None:
    a, b, c = (mem.deployment(n, i) for i, n in enumerate(("a", "b", "c"), start=1))
    route = Route(requested="code_gen", tier="code_gen", deployments=(a, b, c))
    pinned = apply_pin(route, Pin("code_gen", "c"))
    assert pinned is not None and [d.name for d in pinned.deployments] == ["c", "a", "b"]
    assert apply_pin(route, Pin("other_tier", "c")) is None  # the session's tier changed
    assert apply_pin(route, Pin("code_gen", "gone")) is None  # no longer in the route
    assert apply_pin(route, None) is None
    assert Pin.decode(Pin("t", "d").encode()) == Pin("t", "d") and Pin.decode(b"garbage") is None
