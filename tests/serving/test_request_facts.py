"""One pass over a chat request: the facts the steps share agree with what each step computed itself (pure)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.adapters.base import Deployment, ProviderConfig
from providers.adapters.tokens import estimate_prompt_tokens, prompt_facts, prompt_token_bound
from routing.reduction import Switches
from routing.reduction.caps import Caps
from routing.reduction.common import messages_tokens
from routing.scoring import _conversation
from serving.chat_plan import ChatPlan
from serving.exchange import Exchange
from serving.requests import parse_chat_request

PROVIDER = ProviderConfig(1, "p", "openai", "http://upstream", None, 1, 1, 1, 1)

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
contents = st.one_of(
    texts,
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"type": st.just("text"), "text": texts}),
            st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.just({"url": "data:x"})}),
        ),
        max_size=3,
    ),
    st.none(),
)
function = st.fixed_dictionaries({"name": texts, "arguments": texts})
tool_calls = st.lists(
    st.fixed_dictionaries({"id": texts, "type": st.just("function"), "function": function}),
    min_size=1,
    max_size=2,
)
messages = st.lists(
    st.one_of(
        st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "tool", "developer"]), "content": contents}),
        st.fixed_dictionaries({"role": st.just("assistant"), "content": contents}, optional={"tool_calls": tool_calls}),
    ),
    min_size=1,
    max_size=6,
)


def body_of(msgs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": msgs, **extra}


@settings(max_examples=200, deadline=None)
@given(msgs=messages)
def test_the_facts_agree_with_the_estimates_and_the_scorer_computed_alone(msgs) -> None:
    body = body_of(msgs)
    facts = prompt_facts(body)
    assert facts.prompt_tokens == estimate_prompt_tokens(body)
    assert facts.message_tokens == messages_tokens(msgs)
    assert _conversation(body, facts) == _conversation(body)
    users = [m for m in msgs if m["role"] == "user"]
    assert facts.user_turns == len(users)
    assert facts.longest_text == max(
        [len(m["content"]) for m in msgs if isinstance(m["content"], str)]
        + [len(p["text"]) for m in msgs if isinstance(m["content"], list) for p in m["content"] if "text" in p]
        + [0]
    )


@settings(max_examples=200, deadline=None)
@given(msgs=messages, ascii_only=st.booleans(), spaced=st.booleans(), skill=st.sampled_from([None, "review"]))
def test_the_bound_from_the_raw_size_is_never_below_the_bound_of_the_parsed_body(
    msgs, ascii_only, spaced, skill
) -> None:
    """The raw JSON holds every text byte at least as long as its UTF-8: its size bounds the body's."""
    separators = (", ", ": ") if spaced else (",", ":")
    raw = json.dumps(body_of(msgs, skill=skill), ensure_ascii=ascii_only, separators=separators).encode()
    request = parse_chat_request(raw)
    assert request.token_bound() >= prompt_token_bound(request.body)
    request.body = {**request.body, "messages": [{"role": "system", "content": "x" * len(raw)}, *msgs]}
    assert request.token_bound() == prompt_token_bound(request.body)  # a replaced body is measured again


def test_the_facts_follow_a_replaced_body() -> None:
    request = parse_chat_request(orjson.dumps(body_of([{"role": "user", "content": "hello"}])))
    first = request.facts()
    assert request.facts() is first  # gathered once
    request.body = {**request.body, "messages": [{"role": "system", "content": "skill"}, *request.body["messages"]]}
    assert request.facts().messages == 2 and request.facts().last_user == "hello"


def plan_for(msgs: list[dict[str, Any]], *, facts: bool, switches: Switches, caps: Caps) -> ChatPlan:
    body = body_of(msgs)
    return ChatPlan(
        exchange=Exchange("r", "chat.completions", {}),
        body=body,
        switches=switches,
        message_caps=caps,
        facts=prompt_facts(body) if facts else None,
    )


@settings(max_examples=300, deadline=None)
@given(
    msgs=messages,
    window=st.integers(min_value=200, max_value=2_000),
    caps=st.sampled_from([Caps.off(), Caps(40, 50, 30), Caps(0, 20, 0), Caps()]),
    trim=st.booleans(),
    dedupe=st.booleans(),
)
def test_skipping_the_reductions_changes_nothing(msgs, window, caps, trim, dedupe) -> None:
    """With the facts the planner skips reductions it proves idle; bodies and savings stay the same."""
    deployment = Deployment(1, "d", "d", PROVIDER, Decimal(1), Decimal(1), window, 50)
    switches = Switches(trim_context=trim, dedupe_files=dedupe)
    with_facts = plan_for(msgs, facts=True, switches=switches, caps=caps)
    without = plan_for(msgs, facts=False, switches=switches, caps=caps)
    assert with_facts.body_for(deployment) == without.body_for(deployment)
    assert with_facts.exchange.tokens_saved == without.exchange.tokens_saved
    assert with_facts.edit == without.edit


def test_a_prompt_far_below_the_window_is_not_reduced() -> None:
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    plan = plan_for(msgs, facts=True, switches=Switches(trim_context=True), caps=Caps())
    deployment = Deployment(1, "d", "d", PROVIDER, Decimal(1), Decimal(1), 128_000, None)
    assert plan.body_for(deployment) is plan.body
    assert plan._nothing_to_reduce(100_000)
    assert not plan._nothing_to_reduce(plan.facts.message_tokens - 1)  # type: ignore[union-attr]
    long = plan_for([{"role": "user", "content": "x" * 200}], facts=True, switches=Switches(), caps=Caps(0, 100, 0))
    assert not long._nothing_to_reduce(None)  # a text over its cap is cut
