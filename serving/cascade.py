"""Cascade execution: try the planned cheaper tier, escalate when its answer is weak.

When the tenant's policy has the cascade on and a request was routed to a
tier that has a cheaper one, the cheaper tier's deployments are tried first
(through the same failover). Its answer is scored by ``routing.quality``; at
or above the policy's threshold it is returned, otherwise (or when the cheap
tier fails outright) the request goes to the tier it was routed to.

"Next cheaper" is defined over the tiers the tenant sees: the tier with the
next lower complexity band (``complexity_max``); for a tier without a band,
the one with the next lower ``max_cost_per_million``. No cascade when there is
no such tier, the key may not use it, or it would call the same model.

Streams cannot take back bytes, so the cheap answer is held (consumed into a
buffer, nothing sent) until it has been judged: then it is replayed as SSE
chunks, or the escalated answer streams live. The trade-off: no incremental
bytes during the cheap attempt, so time to first byte includes the whole
cheap answer; the escalated answer keeps pass-through streaming.

Accounting: the cheap attempt is paid for. Its cost is added to the request's
cost (``Exchange.discarded_cost_usd``) while tokens, model and provider are
those of the answer served; both attempts are in ``attempts``. The decision
rides on the usage record (``route_reason["cascade"]``) and the usage drain
writes it as a ``RoutingOutcome`` in the same transaction (``write_outcomes``):
off the hot path, lossless and idempotent, like the usage event itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings

from billing.costs import cost_usd
from gateway_platform.errors import GatewayError
from providers.adapters import adapter_for
from providers.adapters.base import Completion, Deployment, StreamChunk, Usage
from providers.adapters.tokens import estimate_prompt_tokens
from routing import quality
from routing.cascade import DECISION_KEY, CascadePlan
from routing.quality import Answer, Question, Verdict
from routing.resolver import Route
from serving import answers
from serving.exchange import attempt_record
from serving.failover import call_with_failover
from serving.streaming import route_served, stream_with_failover, usage_or_estimate

if TYPE_CHECKING:
    from serving.chat_plan import ChatPlan
    from serving.exchange import Exchange

logger = logging.getLogger(__name__)

T = TypeVar("T")
Relay = Callable[[Deployment, AsyncIterator[StreamChunk], bool, bool], Awaitable[None]]


def client_gone() -> GatewayError:
    """The client left before the escalated stream started (recorded as 499, never sent)."""
    return GatewayError("The client closed the connection.", status=499, type="api_error", code="client_disconnected")


def _decide(exchange: Exchange, cascade: CascadePlan, *, final_tier: str, reason: str, verdict: Verdict | None) -> None:
    exchange.tier = final_tier
    exchange.route_reason[DECISION_KEY] = {
        "requested_tier": cascade.requested_tier,
        "initial_tier": cascade.cheap_tier,
        "final_tier": final_tier,
        "escalated": final_tier != cascade.cheap_tier,
        "reason": reason,
        "quality_score": verdict.score if verdict else None,
        "quality_reasons": list(verdict.reasons) if verdict else [],
        "threshold": cascade.threshold,
        "complexity": cascade.question.complexity,
        "query_hash": cascade.query_hash,
    }
    if not settings.GATEWAY["CASCADE_LOG_OUTCOMES"]:
        exchange.route_reason[DECISION_KEY]["log"] = False  # routing.outcomes stores no row for it
    outcome = "escalated" if final_tier != cascade.cheap_tier else "served cheap"
    extra = {"request_id": exchange.request_id, "cascade_reason": reason, "tier": final_tier}
    logger.info("cascade %s", outcome, extra=extra)


def _discard(exchange: Exchange, plan: ChatPlan, deployment: Deployment, usage: Usage | None, chars: int) -> Decimal:
    """Charge the cheap answer that will not be served; returns its cost."""
    cost = cost_usd(deployment, usage_or_estimate(usage, plan.estimate_prompt, chars))
    exchange.discarded_cost_usd += cost
    exchange.cost_usd = exchange.discarded_cost_usd  # until the served answer is priced on top
    return cost


async def _cheap_attempt(
    exchange: Exchange,
    plan: ChatPlan,
    attempt: Callable[[Deployment], Awaitable[T]],
    summary: Callable[[T], tuple[Answer, Usage | None, int]],
) -> T | None:
    """Run the cheap tier: its result when it passes the checks, else None (escalate)."""
    cascade = plan.cascade
    assert cascade is not None
    try:
        result = await call_with_failover(exchange, cascade.cheap_route, attempt)
    except GatewayError as err:
        reason = f"cheap tier failed: {err.code or err.type}"
        _decide(exchange, cascade, final_tier=cascade.requested_tier, reason=reason, verdict=None)
        return None
    deployment = route_served(exchange, cascade.cheap_route)
    answer, usage, chars = summary(result)
    verdict = await check_answer(exchange, deployment, cascade.question, answer)
    note = exchange.attempts[-1]
    note.update(tier=cascade.cheap_tier, quality=verdict.score)
    if verdict.passes(cascade.threshold):
        note["cascade"] = "served"
        _decide(exchange, cascade, final_tier=cascade.cheap_tier, reason="passed", verdict=verdict)
        return result
    note.update(cascade="discarded", cost_usd=str(_discard(exchange, plan, deployment, usage, chars)))
    reason = "low quality: " + ", ".join(verdict.reasons)
    _decide(exchange, cascade, final_tier=cascade.requested_tier, reason=reason, verdict=verdict)
    return None


async def check_answer(exchange: Exchange, deployment: Deployment, question: Question, answer: Answer) -> Verdict:
    """The cheap answer's verdict under ``CASCADE_QUALITY_CHECK_MODE``.

    ``none`` passes every answer; ``heuristic`` is ``routing.quality`` plus
    ``CASCADE_MIN_RESPONSE_LENGTH``; ``llm`` asks the cheap tier's model itself to
    rate the answer 0-10 (one more upstream call, billed on this request and noted
    in its attempts), falling back to the heuristic when the judge fails or says
    no number. The length floor applies in every mode but ``none``.
    """
    config = settings.GATEWAY
    mode, min_length = config["CASCADE_QUALITY_CHECK_MODE"], config["CASCADE_MIN_RESPONSE_LENGTH"]
    if mode == quality.NONE:
        return Verdict(1.0, ())
    fallback = quality.heuristic(question, answer, min_length=min_length)
    if mode != quality.LLM or quality.BELOW_MIN_LENGTH in fallback.reasons:
        return fallback
    adapter = adapter_for(deployment.provider.kind)
    if adapter is None:
        return fallback
    started = time.monotonic()
    body = quality.judge_body(question, answer)
    try:
        judgement = await adapter.complete(deployment, body)
    except GatewayError as err:  # not a fallback hop: the heuristic decides instead
        exchange.attempts.append({**attempt_record(deployment, None, started=started), "judge_error": err.code})
        return fallback
    note = {**attempt_record(deployment, None, started=started), "judge": deployment.name}
    usage = usage_or_estimate(judgement.usage, lambda: estimate_prompt_tokens(body), len(judgement.text))
    cost = cost_usd(deployment, usage)
    exchange.discarded_cost_usd += cost  # the judge is paid for and billed with the request
    note["cost_usd"] = str(cost)
    verdict = quality.judged(judgement.text)
    note["score"] = verdict.score if verdict else None
    exchange.attempts.append(note)
    return verdict or fallback


def _applies(plan: ChatPlan, route: Route) -> bool:
    """The planned cascade still fits the route (a budget may have downgraded it since: then no cascade)."""
    return plan.cascade is not None and route.tier == plan.cascade.requested_tier


def _completion_summary(completion: Completion) -> tuple[Answer, Usage | None, int]:
    answer = answers.completion_answer(completion.body, completion.text, completion.finish_reason)
    return answer, completion.usage, len(completion.text)


def _held_summary(held: answers.HeldStream) -> tuple[Answer, Usage | None, int]:
    return held.answer(), held.usage, len(held.text)


async def complete(
    exchange: Exchange, plan: ChatPlan, route: Route, attempt: Callable[[Deployment], Awaitable[Completion]]
) -> tuple[Completion, Route]:
    """A whole answer, through the cascade when the plan has one; returns it and the route that served it."""
    if _applies(plan, route):
        cheap = await _cheap_attempt(exchange, plan, attempt, _completion_summary)
        if cheap is not None:
            assert plan.cascade is not None
            return cheap, plan.cascade.cheap_route
    return await call_with_failover(exchange, route, attempt), route


async def stream(
    exchange: Exchange,
    plan: ChatPlan,
    route: Route,
    *,
    open_stream: Callable[[Deployment], AsyncIterator[StreamChunk]],
    relay: Relay,
) -> None:
    """Stream an answer: held through the cascade or the guardrail's block mode, else live with failover.

    ``relay(deployment, chunks, last, checked)`` sends chunks to the client; ``checked``
    says the guardrail already saw the whole (held) answer.
    """

    async def holding(deployment: Deployment) -> answers.HeldStream:
        return await answers.hold(deployment, open_stream(deployment))

    # A held answer is finished and billed even if the client leaves (serving.consumers.base).
    exchange.holding = _applies(plan, route) or plan.holds
    if _applies(plan, route):
        held = await _cheap_attempt(exchange, plan, holding, _held_summary)
        if held is not None:
            await relay(held.deployment, answers.release(exchange, plan, held), True, True)
            return
    if plan.holds:
        held = await call_with_failover(exchange, route, holding)
        await relay(held.deployment, answers.release(exchange, plan, held), True, True)
        return
    exchange.holding = False
    if exchange.client_disconnected:
        raise client_gone()  # left during the held cheap attempt: no escalated stream to nobody
    await stream_with_failover(exchange, route, lambda d, last: relay(d, open_stream(d), last, False))
