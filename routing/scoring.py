"""Complexity scoring for ``model="auto"``: a deterministic, explainable score in [0, 1] and a tier.

The score is a sum of small, named contributions on top of a base, so every
decision can be explained by its largest terms (``X-Gateway-Route-Reason``):

- base: without any evidence a request scores low in the *middle* band. The
  cheap band needs positive evidence of light work; guessing cheap on an
  unknown request is the expensive mistake (a wrong answer, a retry loop).
- intent: the strongest keyword found in the task (the latest user message,
  code blocks removed; a short follow-up such as "yes, go ahead" inherits the
  previous task's). Capability keywords (``routing.scoring_vocabulary``)
  belong to the tier whose ``capabilities`` list their tag; agentic intents
  are levels (light, standard, heavy) mapped to the lowest, middle and top
  band; an error trace pasted anywhere in the task counts as debugging. A match
  moves the score to the middle of that band, so a keyword alone decides the
  band and the structural features move it within or, when strong, beyond it.
- structure: context size, turns, tool results (an agent loop in progress),
  tool definitions, code blocks, files named, instruction length, step lists.

``Scorer`` is compiled once per tier view (per snapshot version and tenant);
``Scorer.score`` and ``Scorer.decide`` are pure and take well under a
millisecond on a 50-message conversation (``python -m bench.routing``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from providers.adapters.tokens import CHARS_PER_TOKEN, PromptFacts, prompt_facts
from routing.scoring_vocabulary import CAPABILITY_PATTERNS, ERROR_TRACE, FILE_PATH, INTENT_PATTERNS, STEP_MARKERS

BASE_POINT = 0.2  # no evidence: this far into the middle band (0 = lower edge, 1 = upper edge)
BAND_TARGET = 0.5  # where a keyword lands inside its band
BORDER = 0.05  # quality_first moves a score this close to its band's upper edge up one band
SCAN_HEAD, SCAN_TAIL = 4000, 2000  # instructions sit at the start or the end of long messages
FOLLOW_UP_WORDS = 12  # a shorter task without keywords inherits the previous task's intent
TOP_FEATURES = 3

CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
FILE_REF = re.compile(FILE_PATH, re.IGNORECASE)
STEPS = re.compile(STEP_MARKERS, re.IGNORECASE)
UNSAFE = re.compile(r"[^a-z0-9_.-]+")

STRATEGIES = ("cost_optimized", "quality_first", "local_first")


class NoTierAllowed(Exception):
    """No tier with a complexity band may be used by this key."""


@dataclass(frozen=True, slots=True)
class Band:
    """A tier as the scorer sees it: the upper edge of its band and its capability tags."""

    tier: str
    upper: float
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Feature:
    """One term of the score: what was measured and what it added."""

    name: str
    value: float
    contribution: float

    def label(self) -> str:
        return f"{self.name}:{self.contribution:+.2f}"


@dataclass(frozen=True, slots=True)
class Complexity:
    score: float
    features: tuple[Feature, ...]  # largest contribution (by magnitude) first


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Which tier serves a request and why. ``score`` is None when nothing was scored."""

    tier: str
    score: float | None = None
    features: tuple[Feature, ...] = ()
    reason: str = "auto"  # auto | smart_routing_off | skill:<slug>
    strategy: str = "cost_optimized"
    adjustment: str = ""  # e.g. quality_first:+1 band, key:up

    def header(self) -> str:
        """The short ``X-Gateway-Route-Reason`` value, e.g. ``score=0.42; tier=code_gen; top=refactor:+0.24``."""
        parts = [f"score={self.score:.2f}"] if self.score is not None else []
        parts.append(f"tier={self.tier}")
        if self.reason != "auto":
            parts.append(f"reason={self.reason}")
        if self.features:
            parts.append("top=" + ",".join(f.label() for f in self.features[:TOP_FEATURES]))
        if self.adjustment:
            parts.append(f"adjust={self.adjustment}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """The decision as stored on the usage event (``route_reason``)."""
        return {
            "tier": self.tier,
            "score": self.score,
            "reason": self.reason,
            "strategy": self.strategy,
            "adjustment": self.adjustment,
            "features": [
                {"name": f.name, "value": f.value, "contribution": round(f.contribution, 3)} for f in self.features
            ],
        }


@dataclass(frozen=True, slots=True)
class _Matcher:
    name: str  # capability tag or intent level, for the route reason
    pattern: re.Pattern[str]
    band: int
    in_code: bool = False  # searched in the whole task, code blocks included


def _alternation(fragments: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(f"(?:{f})" for f in fragments) + r")\b", re.IGNORECASE)


def _tag_pattern(tag: str) -> re.Pattern[str]:
    fragments = CAPABILITY_PATTERNS.get(tag) or (re.escape(tag.replace("_", " ").replace("-", " ")),)
    return _alternation(fragments)


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def _keyword(text: str) -> str:
    return UNSAFE.sub("_", text.lower()).strip("_")[:32] or "keyword"


def _scan_text(text: str) -> str:
    if len(text) <= SCAN_HEAD + SCAN_TAIL:
        return text
    return text[:SCAN_HEAD] + "\n" + text[-SCAN_TAIL:]


@dataclass(frozen=True, slots=True)
class _Conversation:
    """What the scorer reads from a chat body, extracted in one pass."""

    chars: int
    user_turns: int
    tool_results: int
    tool_definitions: int
    task: str  # latest user message
    previous_task: str


def _conversation(body: dict[str, Any], facts: PromptFacts | None = None) -> _Conversation:
    """What the scorer reads, from the request's ``PromptFacts`` (gathered here when not given)."""
    facts = facts if facts is not None else prompt_facts(body)
    tools = body.get("tools")
    return _Conversation(
        chars=facts.joined_chars,
        user_turns=facts.user_turns,
        tool_results=facts.tool_results,
        tool_definitions=len(tools) if isinstance(tools, list) else 0,
        task=facts.last_user,
        previous_task=facts.previous_user,
    )


class Scorer:
    """The scorer for one set of bands (ascending upper edges); build it once, call it per request."""

    def __init__(self, bands: Iterable[Band]) -> None:
        self.bands = tuple(sorted(bands, key=lambda b: (b.upper, b.tier)))
        count = len(self.bands)
        matchers: list[_Matcher] = []
        claimed: set[str] = set()
        for index, band in enumerate(self.bands):
            for tag in band.capabilities:
                if tag not in claimed:  # a tag listed by several tiers belongs to the cheapest
                    claimed.add(tag)
                    matchers.append(_Matcher(tag, _tag_pattern(tag), index))
        middle = count // 2
        levels = {"light": 0, "standard": middle, "heavy": count - 1}
        for level, fragments in INTENT_PATTERNS.items():
            matchers.append(_Matcher(level, _alternation(fragments), max(levels[level], 0)))
        matchers.append(_Matcher("error_trace", re.compile(ERROR_TRACE, re.MULTILINE), middle, in_code=True))
        self._matchers = tuple(matchers)
        self.base = self._point(middle, BASE_POINT) if count else 0.0
        self._lifts = tuple(self._point(i, BAND_TARGET) - self.base for i in range(count))

    def _point(self, index: int, fraction: float) -> float:
        lower = self.bands[index - 1].upper if index else 0.0
        return lower + fraction * (self.bands[index].upper - lower)

    # -- scoring -----------------------------------------------------------------------------------

    def score(self, body: dict[str, Any], facts: PromptFacts | None = None) -> Complexity:
        """The complexity of a chat request body (pure, deterministic); ``facts``: its ``prompt_facts``."""
        convo = _conversation(body, facts)
        task_text, blocks = self._split_code(convo.task)
        features = self._intent(convo.task, task_text, convo.previous_task)
        features += self._structure(convo, task_text, blocks)
        total = _clamp(self.base + sum(f.contribution for f in features))
        ranked = sorted((f for f in features if f.contribution), key=lambda f: (-abs(f.contribution), f.name))
        return Complexity(score=round(total, 3), features=tuple(ranked))

    @staticmethod
    def _split_code(task: str) -> tuple[str, list[str]]:
        blocks = CODE_BLOCK.findall(task)
        return (CODE_BLOCK.sub(" ", task) if blocks else task), blocks

    def _matches(self, task: str, prose: str) -> list[tuple[_Matcher, str]]:
        """Each matcher's first hit: in ``prose`` (the task without code), or in the whole task."""
        scan_prose, scan_task = _scan_text(prose), _scan_text(task)
        found = []
        for matcher in self._matchers:
            match = matcher.pattern.search(scan_task if matcher.in_code else scan_prose)
            if match is not None:
                found.append((matcher, match.group(0)))
        return found

    def _intent(self, task: str, prose: str, previous: str) -> list[Feature]:
        if not self._lifts:
            return []
        found = self._matches(task, prose)
        if not found and previous and len(prose.split()) < FOLLOW_UP_WORDS:
            found = self._matches(previous, self._split_code(previous)[0])
        if not found:
            return []
        strongest, keyword = max(found, key=lambda item: item[0].band)
        name = strongest.name if strongest.in_code else _keyword(keyword)  # a trace is named, not quoted
        features = [Feature(name, strongest.band, self._lifts[strongest.band])]
        if strongest.band > 0:
            # Several distinct kinds of non-trivial work in one task: a little more.
            others = {m.name for m, _ in found if m.band > 0} - {strongest.name}
            if others:
                features.append(Feature("breadth", len(others), min(0.03 * len(others), 0.06)))
        return features

    @staticmethod
    def _structure(convo: _Conversation, task_text: str, blocks: list[str]) -> list[Feature]:
        tokens = convo.chars / CHARS_PER_TOKEN
        files = len(set(FILE_REF.findall(task_text)))
        words = len(task_text.split())
        code_lines = sum(block.count("\n") for block in blocks)
        steps = len(STEPS.findall(_scan_text(task_text)))
        return [
            Feature("context", round(tokens), 0.08 * _clamp(math.log2(max(tokens, 1) / 1000) / 4)),
            Feature("turns", convo.user_turns, 0.012 * min(max(convo.user_turns - 1, 0), 5)),
            Feature("tool_results", convo.tool_results, 0.008 * min(convo.tool_results, 8)),
            Feature("tools", convo.tool_definitions, 0.02 if convo.tool_definitions else 0.0),
            Feature("code_blocks", len(blocks), 0.03 * min(len(blocks), 3) + (0.03 if code_lines > 80 else 0.0)),
            Feature("files", files, 0.025 * min(max(files - 1, 0), 4)),
            Feature("task_words", words, 0.08 if words > 300 else 0.04 if words > 120 else 0.0),
            Feature("steps", steps, 0.02 * min(steps, 3) if steps > 1 else 0.0),
        ]

    # -- choosing a tier ---------------------------------------------------------------------------

    def decide(
        self,
        body: dict[str, Any],
        *,
        allowed: Callable[[str], bool],
        strategy: str = "cost_optimized",
        facts: PromptFacts | None = None,
    ) -> RouteDecision:
        """Score ``body`` and pick the band's tier among those ``allowed``; ``NoTierAllowed`` if none is."""
        complexity = self.score(body, facts)
        tier, adjustment = self.pick(complexity.score, allowed=allowed, strategy=strategy)
        return RouteDecision(
            tier=tier,
            score=complexity.score,
            features=complexity.features,
            strategy=strategy,
            adjustment=adjustment,
        )

    def pick(self, score: float, *, allowed: Callable[[str], bool], strategy: str) -> tuple[str, str]:
        """The tier for ``score`` and how it was adjusted (strategy, key bounds)."""
        usable = [i for i, band in enumerate(self.bands) if allowed(band.tier)]
        if not usable:
            raise NoTierAllowed
        index = next((i for i, band in enumerate(self.bands) if score <= band.upper), len(self.bands) - 1)
        adjustment = ""
        if strategy == "quality_first" and index + 1 < len(self.bands) and score > self.bands[index].upper - BORDER:
            index, adjustment = index + 1, "quality_first:+1 band"
        if index not in usable:
            above = [i for i in usable if i > index]
            index, bound = (above[0], "key:up") if above else (usable[-1], "key:down")
            adjustment = f"{adjustment}, {bound}" if adjustment else bound
        return self.bands[index].tier, adjustment

    def middle(self, *, allowed: Callable[[str], bool]) -> str:
        """The tier `auto` uses without scoring: the middle of the allowed bands (upper middle for two)."""
        usable = [band.tier for band in self.bands if allowed(band.tier)]
        if not usable:
            raise NoTierAllowed
        return usable[len(usable) // 2]
