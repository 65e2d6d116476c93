"""Cache keys from the request's one pass: the same keys as the keys computed alone (pure).

``reference_keys`` is ``caching.keys.cache_keys`` as it was before the key material was shared
(every message normalised into a new dict, the namespace and context serialised whole); the keys
built from ``KeyMaterial`` and ``PromptFacts.system_lead`` must be byte for byte the same, so
entries stored before the change are still found.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from caching.keys import ANSWER_PARAMS, EXACT_PREFIX, SYSTEM_ROLES, TOOL_FIELDS, CacheKeys, cache_keys, key_material
from providers.adapters.tokens import prompt_facts
from serving.requests import parse_chat_request


def _digest(value: object) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _content(content: object) -> object:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
    ):
        return "\n".join(p["text"] for p in content).strip()
    return content


def reference_keys(*, tenant_id: int, route_name: str, skill: str, body: dict[str, Any], client_key: str) -> CacheKeys:
    messages = body.get("messages")
    normalised = [
        {**m, "content": _content(m.get("content"))} if isinstance(m, dict) else m
        for m in (messages if isinstance(messages, list) else [])
    ]
    lead = 0
    while (
        lead < len(normalised) and isinstance(normalised[lead], dict) and normalised[lead].get("role") in SYSTEM_ROLES
    ):
        lead += 1
    system, turns = normalised[:lead], normalised[lead:]
    last = turns[-1] if turns else None
    prompt = ""
    if (
        isinstance(last, dict)
        and last.get("role") == "user"
        and set(last) <= {"role", "content"}
        and isinstance(last["content"], str)
        and last["content"]
    ):
        turns, prompt = turns[:-1], last["content"]
    namespace = _digest(
        {
            "tenant": tenant_id,
            "route": route_name,
            "skill": skill,
            "system": system,
            "tools": {name: body.get(name) for name in TOOL_FIELDS},
            "client_key": client_key,
        }
    )
    params = {name: body[name] for name in ANSWER_PARAMS if body.get(name) is not None}
    context = _digest({"prior": turns, "params": params})
    exact = _digest({"namespace": namespace, "context": context, "prompt": prompt})
    return CacheKeys(namespace, context, f"{EXACT_PREFIX}:{tenant_id}:{exact}", prompt)


texts = st.text(alphabet=st.sampled_from(list('ab \n\t"{}é😀\\')), max_size=12)
parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": texts}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.just({"url": "data:x"})}),
)
contents = st.one_of(texts, st.lists(parts, max_size=3), st.none())
calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": texts,
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": texts, "arguments": texts}),
        }
    ),
    min_size=1,
    max_size=2,
)
message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user", "tool"]), "content": contents}),
    st.fixed_dictionaries({"role": st.just("user"), "content": contents}, optional={"name": texts}),
    st.fixed_dictionaries({"role": st.just("assistant")}, optional={"content": contents, "tool_calls": calls}),
)
params = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.sampled_from([0, 0.2, 1]),
        "max_tokens": st.integers(1, 50),
        "stop": st.one_of(texts, st.lists(texts, max_size=2)),
        "stream": st.booleans(),
        "user": texts,
        "tools": st.lists(st.fixed_dictionaries({"type": st.just("function"), "function": st.just({"name": "f"})})),
        "response_format": st.just({"type": "json_object"}),
    },
)
scopes = st.fixed_dictionaries(
    {
        "tenant_id": st.integers(1, 3),
        "route_name": st.sampled_from(["code_gen", "mock-small"]),
        "skill": st.sampled_from(["", "review"]),
        "client_key": st.sampled_from(["", "repo@abc"]),
    }
)


@settings(max_examples=400, deadline=None)
@given(msgs=st.lists(message, min_size=1, max_size=6), extra=params, scope=scopes)
def test_keys_from_the_shared_material_are_the_keys_computed_before(msgs, extra, scope) -> None:
    body = {"model": "m", "messages": msgs, **extra}
    expected = reference_keys(body=body, **scope)
    assert cache_keys(body=body, **scope) == expected
    shared = key_material(body, system_lead=prompt_facts(body).system_lead)
    assert cache_keys(body=body, material=shared, **scope) == expected
    assert body == {"model": "m", "messages": msgs, **extra}  # nothing was changed in place


@settings(max_examples=200, deadline=None)
@given(msgs=st.lists(message, min_size=1, max_size=6), extra=params, scope=scopes)
def test_the_request_computes_the_material_once_per_body(msgs, extra, scope) -> None:
    request = parse_chat_request(orjson.dumps({"model": "m", "messages": msgs, **extra}))
    material = request.key_material(request.body)
    assert request.key_material(request.body) is material
    assert cache_keys(body=request.body, material=material, **scope) == reference_keys(body=request.body, **scope)
    replaced = {**request.body, "messages": [{"role": "system", "content": "a skill"}, *msgs]}
    request.body = replaced
    other = request.key_material(replaced)
    assert other is not material
    assert cache_keys(body=replaced, material=other, **scope) == reference_keys(body=replaced, **scope)


def test_the_facts_count_the_leading_system_messages() -> None:
    system = {"role": "system", "content": "s"}
    developer = {"role": "developer", "content": "d"}
    user = {"role": "user", "content": "u"}
    assert prompt_facts({"messages": [system, developer, user, system]}).system_lead == 2
    assert prompt_facts({"messages": [user, system]}).system_lead == 0
    assert prompt_facts({"messages": [system, "not a message", system]}).system_lead == 1
    assert prompt_facts({"messages": [{"role": ["system"]}, system]}).system_lead == 0  # any JSON role, no 500
