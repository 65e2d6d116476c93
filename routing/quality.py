"""Fast answer-quality heuristics for cascade routing (seed 002, FrugalGPT style).

Each check that fails multiplies the score (starting at 1.0) by its factor and
adds its reason; the cascade returns the cheap answer when the score reaches
the tenant's threshold (default 0.6), otherwise it escalates. The checks, in
the order the reasons are listed:

- ``empty``: no text and no tool call (score 0).
- ``filtered``: the upstream stopped on its content filter (score 0).
- ``truncated``: ``finish_reason`` is ``length`` (x0.4).
- ``refusal``: "I'm sorry, but I can't...", "As an AI model...", "I don't know"
  near the start (x0.2 when the answer is short, x0.6 when it goes on to help).
- ``no_code_block``: the question asks for code, the answer has no fenced block
  and no tool call (x0.5).
- ``repetition``: degenerate loops, fewer than 35 % distinct 4-word sequences
  in an answer of 60 words or more (x0.3).
- ``too_short``: fewer words than ``2 + 80 x complexity²`` (+5 when code was
  asked for: 2 words for a trivial question, 22 at 0.5, 67 at 0.9); the
  factor falls linearly from 1 to 0.5 as the answer shrinks.

Question complexity is the auto router's score when it ran, else an estimate
from the question's length, code request and reasoning keywords.
Everything here is pure and runs in well under a millisecond.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from providers.adapters.tokens import estimate_tokens
from routing.reduction.boilerplate import query_text
from routing.reduction.common import message_text, role
from routing.reduction.fences import find_fences

_CODE_REQUEST_RE = re.compile(
    r"\b(write|implement|create|generate|code up|give me|show me|add|refactor|rewrite|convert|fix|update|modify)\b"
    r"[^.?!\n]{0,80}?"
    r"\b(code|functions?|script|class|method|snippet|program|query|regex|unit tests?|tests?|endpoint|component|"
    r"module|cli|decorator|dockerfile|makefile|sql|patch|diff)\b",
    re.IGNORECASE,
)
_REASONING_RE = re.compile(
    r"\b(design|architecture|architect|step[- ]by[- ]step|explain why|trade-?offs?|compare|plan|analy[sz]e|"
    r"debug|root cause|refactor|migrat\w*|optimi[sz]\w*|prove|concurren\w*|scal\w*)\b",
    re.IGNORECASE,
)
_REFUSAL_RES = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\b(I'm|I am) sorry\b[^.]{0,80}\b(can't|cannot|can not|unable|not able|won't)\b",
        r"\bI (can't|cannot|can not|won't|am unable to|'m unable to|am not able to|'m not able to) "
        r"(help|assist|provide|do that|comply|answer|complete|fulfil|fulfill|support)",
        r"\bI don't (know|have (enough )?information)\b",
        r"\bas an AI( language)? model\b",
        r"\bI('m| am) not (able|allowed|permitted) to\b",
    )
)
REFUSAL_WINDOW = 240
SHORT_REFUSAL_WORDS = 60
REPETITION_MIN_WORDS = 60
REPETITION_MIN_DISTINCT = 0.35
MIN_WORDS_BASE = 2
MIN_WORDS_SPAN = 80
CODE_EXTRA_WORDS = 5


@dataclass(frozen=True, slots=True)
class Question:
    """What the checks need to know about the request."""

    text: str
    wants_code: bool
    complexity: float


@dataclass(frozen=True, slots=True)
class Answer:
    """What the checks need to know about an answer."""

    text: str
    finish_reason: str | None
    tool_calls: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float
    reasons: tuple[str, ...]

    def passes(self, threshold: float) -> bool:
        return self.score >= threshold


def wants_code(text: str) -> bool:
    """Whether a question asks for code to be written or changed."""
    return bool(_CODE_REQUEST_RE.search(text))


def estimate_complexity(text: str, *, code: bool) -> float:
    """A [0, 1] complexity for a question when no auto-routing score is at hand."""
    length = min(1.0, estimate_tokens(text) / 400) * 0.6
    reasoning = min(2, len(_REASONING_RE.findall(text))) * 0.1
    return round(min(1.0, length + reasoning + (0.2 if code else 0.0)), 3)


def question_from_messages(messages: Sequence[Any], complexity: float | None = None) -> Question:
    """The question of a chat request: its last user message (and the router's complexity, if any)."""
    last = next((message_text(m) for m in reversed(messages) if isinstance(m, dict) and role(m) == "user"), "")
    text = query_text(last)  # an IDE's boilerplate and attached files are not the question
    code = wants_code(text)
    if complexity is None or not 0.0 <= complexity <= 1.0:
        complexity = estimate_complexity(text, code=code)
    return Question(text=text, wants_code=code, complexity=complexity)


def _refusal_factor(text: str, words: int) -> float:
    head = text[:REFUSAL_WINDOW].replace("\u2019", "'")
    if not any(pattern.search(head) for pattern in _REFUSAL_RES):
        return 1.0
    return 0.2 if words < SHORT_REFUSAL_WORDS else 0.6


def _distinct_ngram_ratio(words: list[str], n: int = 4) -> float:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def _length_factor(words: int, question: Question) -> float:
    expected = MIN_WORDS_BASE + MIN_WORDS_SPAN * question.complexity**2
    expected += CODE_EXTRA_WORDS if question.wants_code else 0
    if words >= expected:
        return 1.0
    return 0.5 + 0.5 * words / expected


def assess(question: Question, answer: Answer) -> Verdict:
    """Score ``answer`` in [0, 1] with the reasons it lost points."""
    text = answer.text.strip()
    if not text and not answer.tool_calls:
        return Verdict(0.0, ("empty",))
    if answer.finish_reason == "content_filter":
        return Verdict(0.0, ("filtered",))
    words = text.lower().split()
    checks: list[tuple[str, float]] = []
    if answer.finish_reason == "length":
        checks.append(("truncated", 0.4))
    if text:
        checks.append(("refusal", _refusal_factor(text, len(words))))
    if question.wants_code and not answer.tool_calls and not find_fences(text):
        checks.append(("no_code_block", 0.5))
    if len(words) >= REPETITION_MIN_WORDS and _distinct_ngram_ratio(words) < REPETITION_MIN_DISTINCT:
        checks.append(("repetition", 0.3))
    if not answer.tool_calls:
        checks.append(("too_short", _length_factor(len(words), question)))
    score = 1.0
    reasons: list[str] = []
    for reason, factor in checks:
        if factor < 1.0:
            score *= factor
            reasons.append(reason)
    return Verdict(round(max(0.0, min(1.0, score)), 4) if math.isfinite(score) else 0.0, tuple(reasons))


# -- the cascade's check modes (seed 002: CASCADE_QUALITY_CHECK_MODE, CASCADE_MIN_RESPONSE_LENGTH) --------

HEURISTIC, LLM, NONE = "heuristic", "llm", "none"
BELOW_MIN_LENGTH = "below_min_length"
CHECK_MODES = (HEURISTIC, LLM, NONE)
JUDGE_MAX_TOKENS = 8
JUDGE_ANSWER_CHARS = 6000  # the judge reads the head of long answers: it rates, it does not re-derive
_JUDGE_SCORE_RE = re.compile(r"\b(10|[0-9])\b")


def heuristic(question: Question, answer: Answer, *, min_length: int) -> Verdict:
    """``assess``, plus the minimum response length: a shorter text answer (no tool call) fails outright.

    The other reasons are kept (a short refusal is recorded as ``refusal`` and
    ``below_min_length``), so routing outcomes still say what was wrong.
    """
    verdict = assess(question, answer)
    if min_length > 0 and not answer.tool_calls and len(answer.text.strip()) < min_length:
        return Verdict(0.0, (*verdict.reasons, BELOW_MIN_LENGTH))
    return verdict


def judge_body(question: Question, answer: Answer) -> dict[str, Any]:
    """The chat request that asks a cheap judge model to rate an answer from 0 to 10."""
    prompt = (
        "Rate how well the ANSWER resolves the QUESTION, from 0 (useless, wrong or a refusal) to 10 "
        "(complete and correct). Reply with the number only.\n\n"
        f"QUESTION:\n{question.text[:JUDGE_ANSWER_CHARS]}\n\nANSWER:\n{answer.text[:JUDGE_ANSWER_CHARS]}"
    )
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": JUDGE_MAX_TOKENS, "temperature": 0}


def judged(text: str) -> Verdict | None:
    """The judge's reply as a verdict (score / 10), or None when it holds no number 0-10."""
    match = _JUDGE_SCORE_RE.search(text)
    if match is None:
        return None
    score = int(match.group(1)) / 10
    return Verdict(score, () if score >= 0.5 else ("judge",))
