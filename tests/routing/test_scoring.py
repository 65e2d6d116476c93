"""The complexity scorer: hand-written prompts per tier, explanations, determinism, strategies, key bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.scoring import Band, NoTierAllowed, RouteDecision, Scorer

SEEDED_BANDS = (
    Band("simple_ops", 0.35, ("file_ops", "grep", "basic_parsing")),
    Band("code_gen", 0.65, ("script_generation", "refactoring", "debugging")),
    Band("complex_reasoning", 1.0, ("architecture", "multi_step_planning", "complex_logic")),
)
SCORER = Scorer(SEEDED_BANDS)
TOOLS = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in ("read_file", "grep", "run")]


def ask(text: str, *, system: str | None = None, **extra: Any) -> dict[str, Any]:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return {"model": "auto", "messages": messages, **extra}


def tier_of(body: dict[str, Any], **kwargs: Any) -> str:
    return SCORER.decide(body, allowed=lambda name: True, **kwargs).tier


SIMPLE_PROMPTS = (
    "list all files in the deploy/ directory",
    "grep the repo for 'FIXME'",
    "where is STRIPE_WEBHOOK_SECRET defined?",
    "show me the last 20 lines of server.log",
    "rename the variable `cnt` to `count` in stats.py",
    "fix the typo in the README: 'enviroment' should be 'environment'",
    "what's the command to list docker volumes?",
    "count the lines in this output that mention timeout",
    "git status",
    "add a docstring to the helper in utils/text.py",
    "find all references to OldPaymentClient",
)
CODE_PROMPTS = (
    "write a python script that merges all CSV files in a folder into one parquet file",
    "implement a token bucket rate limiter class in Go",
    "refactor the OrderForm component to use react-hook-form",
    "add unit tests for the date parsing helpers, including leap years",
    "debug this: the upload endpoint returns 413 for files larger than 1 MB even though nginx allows 10 MB",
    "convert this module to async/await and keep the public API",
    "fix the bug where the search box clears itself after every keystroke",
    "Traceback (most recent call last) shows this, what's wrong?\n```\nValueError: invalid literal for int()\n```",
    "generate a github actions workflow that runs the tests on every push",
    "extract the email sending code into its own class and inject it",
)
HEAVY_PROMPTS = (
    "design the architecture for a multi-tenant document store with per-tenant encryption keys",
    "what are the trade-offs between a modular monolith and microservices for a team of eight?",
    "plan the migration from our self-hosted Postgres to a managed cluster with zero downtime",
    "we see duplicate processing in our consumer group after a rebalance; how do we get exactly-once semantics?",
    "is this double-checked locking implementation free of race conditions under the Java memory model?",
    "investigate why our cluster loses writes during a network partition and propose a fix",
    "threat model the password reset flow of our SaaS product",
    "break the rewrite of our billing engine down into phases with a rollback plan for each",
    "how should we shard the events table as we grow to billions of rows? consider the hot partition problem",
    "compare the approaches for cache invalidation between our API nodes and recommend one",
)


@pytest.mark.parametrize("text", SIMPLE_PROMPTS)
def test_it_sends_light_requests_to_the_cheap_tier(text: str) -> None:
    assert tier_of(ask(text)) == "simple_ops"


@pytest.mark.parametrize("text", CODE_PROMPTS)
def test_it_sends_code_work_to_the_middle_tier(text: str) -> None:
    assert tier_of(ask(text)) == "code_gen"


@pytest.mark.parametrize("text", HEAVY_PROMPTS)
def test_it_sends_design_planning_and_hard_problems_to_the_top_tier(text: str) -> None:
    assert tier_of(ask(text)) == "complex_reasoning"


def test_a_request_without_any_evidence_goes_to_the_middle_band() -> None:
    decision = SCORER.decide(ask("the numbers on the dashboard look off since Monday"), allowed=lambda n: True)
    assert decision.tier == "code_gen"
    assert decision.features == ()  # nothing matched: the base alone


def test_ide_system_prompts_do_not_count_as_intent() -> None:
    system = "You are an expert in software architecture, debugging, refactoring and distributed systems design."
    assert tier_of(ask("list the files in src/", system=system)) == "simple_ops"


def test_keywords_inside_pasted_code_are_ignored_but_error_traces_are_not() -> None:
    code = "```python\n# TODO: design a distributed architecture\ndef f():\n    pass\n```"
    assert tier_of(ask(f"rename f to g:\n{code}")) == "simple_ops"
    trace = "```\nTraceback (most recent call last):\n  File \"app.py\", line 3\nKeyError: 'id'\n```"
    decision = SCORER.decide(ask(f"this happens on login\n{trace}"), allowed=lambda n: True)
    assert decision.tier == "code_gen" and decision.features[0].name == "error_trace"


def test_a_short_follow_up_inherits_the_previous_task() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "design the service boundaries for our checkout and payments domains"},
            {"role": "assistant", "content": "Here is a proposal ..."},
            {"role": "user", "content": "ok, go on"},
        ]
    }
    assert tier_of(body) == "complex_reasoning"


def test_an_agent_loop_is_scored_by_its_task_not_its_tool_output() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "list the files in the migrations folder"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "refactor the architecture; Traceback ..."},
        ],
        "tools": TOOLS,
    }
    assert tier_of(body) == "simple_ops"


def test_structure_raises_the_score_within_and_beyond_a_band() -> None:
    task = "refactor these modules to share one validation layer: a.py, b.py, c.py, d.py and e.py"
    short = SCORER.score(ask("refactor the validation layer"))
    busy = SCORER.score(
        {
            "messages": [
                {"role": "user", "content": "x " * 4000},
                {"role": "assistant", "content": "..."},
                {"role": "tool", "content": "y " * 8000},
                {"role": "user", "content": task + "\n1. first\n2. then this\n3. finally that"},
            ],
            "tools": TOOLS,
        }
    )
    assert busy.score > short.score
    names = {f.name for f in busy.features}
    assert {"files", "context", "steps", "tools"} <= names


def test_the_decision_explains_itself() -> None:
    body = ask("refactor the parser in parser.py and lexer.py:\n```python\ndef parse(): ...\n```")
    decision = SCORER.decide(body, allowed=lambda n: True)
    header = decision.header()
    assert header.startswith(f"score={decision.score:.2f}; tier=code_gen; top=refactor:+")
    assert "code_blocks:+0.03" in header and "files:+0.03" in header
    stored = decision.as_dict()
    assert stored["tier"] == "code_gen" and stored["score"] == decision.score and stored["reason"] == "auto"
    assert stored["features"][0] == {"name": "refactor", "value": 1, "contribution": pytest.approx(0.09, abs=0.01)}
    assert header.isascii()


def test_light_keywords_pull_the_score_down() -> None:
    [feature] = SCORER.score(ask("grep for the word timeout")).features
    assert feature.name == "grep" and feature.contribution < 0


def test_scoring_is_deterministic() -> None:
    body = ask("implement retries in client.py and server.py, then add tests", tools=TOOLS)
    first = SCORER.decide(body, allowed=lambda n: True)
    assert all(SCORER.decide(body, allowed=lambda n: True) == first for _ in range(20))
    assert Scorer(reversed(SEEDED_BANDS)).decide(body, allowed=lambda n: True) == first


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": st.text(max_size=300)}
        ),
        max_size=12,
    )
)
def test_any_conversation_scores_between_zero_and_one(messages: list[dict[str, str]]) -> None:
    decision = SCORER.decide({"messages": messages}, allowed=lambda n: True)
    assert decision.score is not None and 0.0 <= decision.score <= 1.0
    assert decision.tier in {band.tier for band in SEEDED_BANDS}


def test_quality_first_moves_borderline_scores_up_one_band() -> None:
    allowed = {"simple_ops", "code_gen", "complex_reasoning"}.__contains__
    assert SCORER.pick(0.33, allowed=allowed, strategy="cost_optimized") == ("simple_ops", "")
    assert SCORER.pick(0.33, allowed=allowed, strategy="quality_first") == ("code_gen", "quality_first:+1 band")
    assert SCORER.pick(0.20, allowed=allowed, strategy="quality_first") == ("simple_ops", "")
    assert SCORER.pick(0.99, allowed=allowed, strategy="quality_first") == ("complex_reasoning", "")


def test_the_key_bounds_the_choice() -> None:
    heavy = ask("design a multi-region architecture for our API")
    only_cheap = SCORER.decide(heavy, allowed={"simple_ops"}.__contains__)
    assert (only_cheap.tier, only_cheap.adjustment) == ("simple_ops", "key:down")
    no_middle = SCORER.decide(
        ask("write a bash script that rotates logs"), allowed={"simple_ops", "complex_reasoning"}.__contains__
    )
    assert (no_middle.tier, no_middle.adjustment) == ("complex_reasoning", "key:up")
    with pytest.raises(NoTierAllowed):
        SCORER.decide(heavy, allowed=lambda name: False)


def test_without_scoring_auto_takes_the_middle_of_the_allowed_bands() -> None:
    assert SCORER.middle(allowed=lambda n: True) == "code_gen"
    assert SCORER.middle(allowed={"simple_ops", "complex_reasoning"}.__contains__) == "complex_reasoning"
    assert SCORER.middle(allowed={"simple_ops"}.__contains__) == "simple_ops"
    with pytest.raises(NoTierAllowed):
        SCORER.middle(allowed=lambda n: False)


def test_a_custom_capability_tag_matches_its_own_words() -> None:
    scorer = Scorer([*SEEDED_BANDS[:2], Band("infra", 1.0, ("kubernetes", "helm_charts"))])
    decision = scorer.decide(ask("why is the kubernetes ingress returning 404?"), allowed=lambda n: True)
    assert decision.tier == "infra" and decision.features[0].name == "kubernetes"
    assert scorer.decide(ask("update our helm charts for the new image"), allowed=lambda n: True).tier == "infra"


def test_bands_follow_the_configured_edges() -> None:
    scorer = Scorer([Band("cheap", 0.5, ("grep",)), Band("strong", 1.0)])
    assert scorer.decide(ask("grep for foo"), allowed=lambda n: True).tier == "cheap"
    # Without evidence a request lands in the middle band, which for two bands is the upper one.
    assert scorer.decide(ask("hello there"), allowed=lambda n: True).tier == "strong"


def test_no_bands_means_nothing_to_choose() -> None:
    with pytest.raises(NoTierAllowed):
        Scorer([]).decide(ask("list files"), allowed=lambda n: True)


def test_a_decision_without_a_score_renders_its_reason() -> None:
    decision = RouteDecision(tier="complex_reasoning", reason="skill:architecture-review")
    assert decision.header() == "tier=complex_reasoning; reason=skill:architecture-review"
