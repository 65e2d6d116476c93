"""Cascade quality heuristics: each check on hand-written answers."""

from __future__ import annotations

import pytest

from routing.quality import (
    Answer,
    Question,
    assess,
    estimate_complexity,
    question_from_messages,
    wants_code,
)

SIMPLE = Question(text="What does HTTP 404 mean?", wants_code=False, complexity=0.05)
CODE = Question(text="Write a Python function that parses ISO dates.", wants_code=True, complexity=0.3)
HARD = Question(text="Design the sharding strategy ...", wants_code=False, complexity=0.9)
GOOD_CODE = "Here it is:\n```python\ndef parse(value: str) -> date:\n    return date.fromisoformat(value)\n```\n" + (
    "It raises ValueError for malformed input, so callers can report the bad value. " * 2
)


def test_it_passes_a_plain_good_answer():
    verdict = assess(SIMPLE, Answer("It means the server could not find the requested resource.", "stop"))
    assert verdict.score == 1.0 and verdict.reasons == ()
    assert verdict.passes(0.6)


def test_it_fails_an_empty_answer_but_not_a_tool_call():
    assert assess(SIMPLE, Answer("   ", "stop")).reasons == ("empty",)
    assert assess(SIMPLE, Answer("   ", "stop")).score == 0.0
    assert assess(CODE, Answer("", "tool_calls", tool_calls=True)).score == 1.0


def test_it_penalises_a_truncated_answer():
    verdict = assess(SIMPLE, Answer("It means the server could not find the requested", "length"))
    assert verdict.reasons == ("truncated",) and verdict.score == pytest.approx(0.4)


def test_it_fails_a_content_filtered_answer():
    assert assess(SIMPLE, Answer("partial", "content_filter")).reasons == ("filtered",)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that request.",
        "I\u2019m sorry, I cannot do that.",
        "I cannot assist with generating that.",
        "As an AI language model, I have no access to your files.",
        "I don't know.",
        "I am not able to browse the internet.",
    ],
)
def test_it_recognises_refusals(text):
    verdict = assess(SIMPLE, Answer(text, "stop"))
    assert "refusal" in verdict.reasons
    assert not verdict.passes(0.6)


def test_a_long_helpful_answer_after_an_apology_is_penalised_less():
    text = "I'm sorry, I can't run code here, but here is what happens step by step. " + " ".join(
        f"Line {n} of the input goes to parser stage {n % 4}." for n in range(12)
    )
    verdict = assess(SIMPLE, Answer(text, "stop"))
    assert verdict.reasons == ("refusal",) and verdict.score == pytest.approx(0.6)


def test_refusal_words_later_in_the_answer_do_not_count():
    text = "Set the header. " * 20 + "If the server says I cannot help, check the token."
    assert "refusal" not in assess(SIMPLE, Answer(text, "stop")).reasons


def test_it_wants_a_code_block_when_code_was_asked_for():
    prose = "You would call date.fromisoformat on the value and return the result to the caller. " * 2
    assert "no_code_block" in assess(CODE, Answer(prose, "stop")).reasons
    assert assess(CODE, Answer(GOOD_CODE, "stop")).reasons == ()


def test_it_detects_degenerate_repetition():
    looping = "the cache is warm and " * 30
    verdict = assess(SIMPLE, Answer(looping, "stop"))
    assert "repetition" in verdict.reasons and not verdict.passes(0.6)
    varied = " ".join(f"step {n} checks item {n * 7} against rule {n % 5}." for n in range(30))
    assert "repetition" not in assess(SIMPLE, Answer(varied, "stop")).reasons


def test_it_expects_longer_answers_to_harder_questions():
    short = Answer("Use consistent hashing.", "stop")
    assert assess(SIMPLE, short).reasons == ()
    hard = assess(HARD, short)
    assert hard.reasons == ("too_short",) and hard.score < 0.6
    long_enough = Answer(" ".join(["Shard by tenant id with consistent hashing"] * 12), "stop")
    assert "too_short" not in assess(HARD, long_enough).reasons


def test_question_features():
    assert wants_code("Please write a bash script that rotates the logs")
    assert wants_code("Refactor this function to use a dataclass")
    assert not wants_code("What does this error mean?")
    assert estimate_complexity("hi", code=False) < 0.05
    assert estimate_complexity("Design the architecture and explain why, step by step. " * 30, code=True) > 0.8
    question = question_from_messages(
        [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": [{"type": "text", "text": "Write a function to add two numbers"}]},
        ]
    )
    assert question.text == "Write a function to add two numbers" and question.wants_code
    assert question_from_messages([{"role": "user", "content": "x"}], complexity=0.7).complexity == 0.7


# How long assess() takes per answer is measured by bench/quality_speed.py, not asserted here.
