"""Summarise a long conversation's older turns before routing it on (``routing.summaries``).

The summary is made by the cheapest tier the tenant sees (the lowest ``auto``
band), once per block: it is kept in Redis by tenant and block hash for
``SUMMARY_TTL_SECONDS``, so the agent's next turns reuse it byte for byte. The
call is billed with the request (``discarded_cost_usd`` is part of its cost and
the call is one of its attempts); ``X-Gateway-Summary`` says what happened and
``tokens_saved["summarize"]`` how many prompt tokens it saved. Any failure
leaves the conversation as it was.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from billing.costs import cost_usd
from gateway_platform.config.snapshot import KeyInfo, Snapshot
from gateway_platform.errors import GatewayError
from gateway_platform.redis_clients import async_client
from providers.adapters import adapter_for
from providers.adapters.tokens import estimate_prompt_tokens
from routing import summaries
from routing.policies import routing_policy
from routing.reduction.common import message_tokens, messages_tokens
from routing.tier_views import tiers_for
from serving.exchange import Exchange, attempt_record
from serving.requests import ChatRequest
from serving.streaming import usage_or_estimate

logger = logging.getLogger(__name__)

SUMMARY_TTL_SECONDS = 24 * 3600
HEADER = "X-Gateway-Summary"


def _key(tenant_id: int, block_key: str) -> str:
    return f"gw:summary:{tenant_id}:{block_key}"


async def summarize(exchange: Exchange, snapshot: Snapshot, key: KeyInfo, request: ChatRequest) -> None:
    """Replace the request's oldest turns by their summary when its tenant's policy says so."""
    policy = routing_policy(snapshot, key.tenant_id)
    messages = request.body.get("messages")
    if not policy.summarize_context or not isinstance(messages, list):
        return
    block = summaries.block_to_summarise(messages, policy.summarize_threshold_tokens)
    if block is None:
        return
    view = tiers_for(snapshot, key.tenant_id)
    if not view.bands or not view.bands[0].deployments:
        return
    deployment = view.bands[0].deployments[0]
    cache_key = _key(key.tenant_id, block.key)
    cached = True
    try:
        raw = await async_client().get(cache_key)
    except RedisError:
        raw = None
    summary = raw.decode() if isinstance(raw, bytes) else raw
    if not summary:
        cached = False
        adapter = adapter_for(deployment.provider.kind)
        if adapter is None:
            return
        body = summaries.summary_request([messages[i] for i in block.indices])
        started = time.monotonic()
        try:
            completion = await adapter.complete(deployment, body)
        except GatewayError as err:
            logger.warning("summary failed; sending the conversation whole", extra={"error": err.code})
            return
        summary = completion.text.strip()
        if not summary:
            return
        usage = usage_or_estimate(completion.usage, lambda: estimate_prompt_tokens(body), len(completion.text))
        cost = cost_usd(deployment, usage)
        exchange.discarded_cost_usd += cost  # billed with this request
        exchange.attempts.append(
            {**attempt_record(deployment, None, started=started), "summary": True, "cost_usd": str(cost)}
        )
        try:
            await async_client().set(cache_key, summary, ex=SUMMARY_TTL_SECONDS)
        except RedisError:
            logger.warning("summary not cached")
    replaced = summaries.with_summary(messages, block, summary)
    saved = block.tokens - message_tokens(summaries.summary_message(summary, len(block.indices)))
    request.body = {**request.body, "messages": replaced}
    exchange.tokens_saved = {**exchange.tokens_saved, summaries.FEATURE: saved}
    exchange.extra_headers[HEADER] = (
        f"messages={len(block.indices)}; tokens_saved={saved}; {'reused' if cached else 'new'}; by={deployment.name}"
    )
    logger.info("conversation summarised", extra={"replaced": len(block.indices), "tokens": messages_tokens(replaced)})
