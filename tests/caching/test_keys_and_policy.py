"""Cache keys and cacheability rules (pure functions)."""

from __future__ import annotations

from typing import Any

from caching.keys import CacheKeys, cache_keys, client_cache_key
from caching.policy import CachePolicyInfo, Mode, decide, tools_allowed

SYSTEM = {"role": "system", "content": "You are a coding agent."}


def keys(messages: list[Any], **extra: Any) -> CacheKeys:
    options: dict[str, Any] = {"tenant_id": 1, "route_name": "code_gen", "skill": "", "client_key": ""}
    body = {"model": "code_gen", "messages": messages}
    for name in ("tenant_id", "route_name", "skill", "client_key"):
        if name in extra:
            options[name] = extra.pop(name)
    return cache_keys(body={**body, **extra}, **options)


def test_the_last_user_message_is_the_semantic_prompt() -> None:
    k = keys([SYSTEM, {"role": "user", "content": "  Summarise a.csv  "}])
    assert k.prompt_text == "Summarise a.csv"
    assert k.exact_key.startswith("gwcache:x:1:")


def test_whitespace_and_stream_flags_do_not_change_the_exact_key() -> None:
    a = keys([SYSTEM, {"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True})
    b = keys([SYSTEM, {"role": "user", "content": [{"type": "text", "text": " hi "}]}], user="bob")
    assert a == b


def test_answer_changing_parameters_change_the_context() -> None:
    base = keys([{"role": "user", "content": "hi"}])
    for extra in ({"temperature": 0.2}, {"max_tokens": 10}, {"response_format": {"type": "json_object"}}):
        other = keys([{"role": "user", "content": "hi"}], **extra)
        assert other.context_hash != base.context_hash and other.exact_key != base.exact_key
        assert other.namespace == base.namespace


def test_namespace_covers_tenant_route_system_prompt_tools_skill_and_client_key() -> None:
    messages = [SYSTEM, {"role": "user", "content": "hi"}]
    base = keys(messages).namespace
    assert keys(messages, tenant_id=2).namespace != base
    assert keys(messages, route_name="simple_ops").namespace != base
    assert keys(messages, skill="review").namespace != base
    assert keys(messages, client_key="repo@abc123").namespace != base
    assert keys([{"role": "system", "content": "Other"}, messages[1]]).namespace != base
    assert keys(messages, tools=[{"type": "function", "function": {"name": "f"}}]).namespace != base


def test_earlier_turns_are_context_not_prompt() -> None:
    first = keys(
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    )
    other = keys(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    )
    assert first.prompt_text == other.prompt_text == "c"
    assert first.context_hash != other.context_hash


def test_a_request_ending_with_a_tool_result_is_exact_only() -> None:
    k = keys([{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "1", "content": "out"}])
    assert k.prompt_text == ""


def test_the_client_key_comes_from_the_header_or_metadata() -> None:
    assert client_cache_key({b"x-gateway-cache-key": b"state-1"}, {"metadata": {"cache_key": "x"}}) == "state-1"
    assert client_cache_key({}, {"metadata": {"cache_key": "state-2"}}) == "state-2"
    assert client_cache_key({}, {}) == ""


def decision(policy: CachePolicyInfo | None = None, directive: str = "", **body: Any) -> Mode:
    return decide(
        policy or CachePolicyInfo(), endpoint="chat.completions", route_name="code_gen", body=body, directive=directive
    ).mode


def test_directives_and_rules_decide_the_mode() -> None:
    assert decision() is Mode.FULL
    assert decision(directive="no-cache") is Mode.STORE_ONLY
    assert decision(directive="no-store") is Mode.BYPASS
    assert decision(CachePolicyInfo(enabled=False)) is Mode.BYPASS
    assert decision(temperature=1.2) is Mode.BYPASS
    assert decision(temperature=0.7) is Mode.FULL
    assert decision(n=2) is Mode.BYPASS
    assert decision(CachePolicyInfo(cacheable_models=("simple_ops",))) is Mode.BYPASS
    assert decision(CachePolicyInfo(cacheable_routes=("messages",))) is Mode.BYPASS


def test_tools_are_cached_only_when_read_only() -> None:
    tools = [
        {"type": "function", "function": {"name": "read_file"}},
        {"type": "function", "function": {"name": "grep"}},
    ]
    assert not tools_allowed(CachePolicyInfo(), tools)
    assert tools_allowed(CachePolicyInfo(tools_rule="always"), tools)
    read_only = CachePolicyInfo(tools_rule="read_only", read_only_tools=("read_*", "grep"))
    assert tools_allowed(read_only, tools)
    assert not tools_allowed(read_only, [*tools, {"type": "function", "function": {"name": "write_file"}}])
    assert decision(read_only, tools=tools) is Mode.FULL
