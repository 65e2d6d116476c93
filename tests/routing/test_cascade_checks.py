"""The cascade's check modes as pure functions: minimum length, the judge's prompt and its reply."""

from __future__ import annotations

from routing.quality import Answer, Question, heuristic, judge_body, judged

QUESTION = Question(text="what does git stash do?", wants_code=False, complexity=0.1)


def test_the_minimum_response_length_fails_short_text_answers_only() -> None:
    short = Answer(text="It stashes.", finish_reason="stop")
    failed = heuristic(QUESTION, short, min_length=100)
    assert failed.score == 0 and failed.reasons[-1] == "below_min_length"
    assert heuristic(QUESTION, short, min_length=0).score > 0
    tool_call = Answer(text="", finish_reason="tool_calls", tool_calls=True)
    assert "below_min_length" not in heuristic(QUESTION, tool_call, min_length=100).reasons


def test_a_short_refusal_keeps_its_reason() -> None:
    refusal = Answer(text="I'm sorry, but I can't help with that.", finish_reason="stop")
    assert heuristic(QUESTION, refusal, min_length=100).reasons == ("refusal", "below_min_length")


def test_the_minimum_response_length_defaults_to_seed_002s_100() -> None:
    from gateway_platform.settings import GATEWAY

    assert GATEWAY["CASCADE_MIN_RESPONSE_LENGTH"] == 100


def test_the_judge_is_asked_for_a_number_and_its_reply_is_read() -> None:
    body = judge_body(QUESTION, Answer(text="It saves your changes aside.", finish_reason="stop"))
    prompt = body["messages"][0]["content"]
    assert "git stash" in prompt and "It saves your changes aside." in prompt and body["max_tokens"] <= 8
    verdict = judged("8")
    assert verdict is not None and verdict.score == 0.8 and verdict.passes(0.6)
    low = judged("Score: 3/10")
    assert low is not None and low.score == 0.3 and low.reasons == ("judge",)
    assert judged("I cannot rate this") is None
