"""The cache in the chat request flow: look up before the upstream call, store after the answer.

``serving.chat`` makes three calls: ``lookup`` (after resolve and admission),
``serve_hit`` (instead of the upstream call when it found an answer) and
``remember`` (as the complete answer settles). Everything else lives here.

Nothing the cache does may break or delay an answer: a failing lookup is a
``BYPASS``; storing (``caching.entry_queue``) rides on the request's last Redis
round trip, or runs as a background task when the prompt must be embedded first,
with errors logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from asgiref.sync import sync_to_async

from billing.budgets import max_cost_usd
from billing.costs import cost_usd
from caching import entry_queue, store
from caching.embedders import Embedder, embedder_for
from caching.guard import same_parameters
from caching.keys import CacheKeys, KeyMaterial, cache_keys, client_cache_key
from caching.policy import CachePolicyInfo, Decision, Mode, cache_policy, client_directive, decide
from caching.store import CachedAnswer, NewEntry, SemanticQuery
from gateway_platform.config.snapshot import Snapshot
from gateway_platform.redis_clients import Batch
from providers.adapters.base import Usage
from routing.resolver import Route
from serving.exchange import Exchange, Responder, attempt_record
from serving.metrics import CACHE_EMBEDDINGS
from serving.replay import StreamRecorder, WatchedResponder, replay_events
from serving.streaming import JSON_HEADERS, SSE_HEADERS

logger = logging.getLogger(__name__)

HIT, SEMANTIC, MISS, BYPASS = "HIT", "SEMANTIC", "MISS", "BYPASS"
# Prompts longer than this are not embedded: the local model's window is 256 tokens (~1,000
# characters), and a provider embedding of a whole long conversation matches nothing useful.
MAX_EMBED_CHARS = 8_000
_background: set[asyncio.Task[None]] = set()
Material = Callable[[dict[str, Any]], KeyMaterial]  # a body's ``KeyMaterial``, computed once per body


@dataclass(slots=True)
class CacheLookup:
    """What the cache decided for one request, and what ``remember`` needs later."""

    decision: Decision
    policy: CachePolicyInfo = field(default_factory=CachePolicyInfo)
    snapshot: Snapshot | None = None
    keys: CacheKeys | None = None
    embedder: Embedder | None = None
    vector: list[float] | None = None  # the prompt's vector, computed once for lookup and store
    scope: str | None = None  # the semantic scope's marker key (``store.scope_key``) when an embedder applies
    hit: CachedAnswer | None = None
    recorder: StreamRecorder | None = None

    @property
    def stores(self) -> bool:
        return self.keys is not None and self.decision.mode is not Mode.BYPASS

    def watch(self, responder: Responder) -> Responder:
        """The responder a stream attempt should send through, so its answer can be stored afterwards."""
        if not self.stores:
            return responder
        self.recorder = StreamRecorder()  # one per attempt: only the attempt that finished counts
        return WatchedResponder(responder, self.recorder)

    def record(self) -> Callable[[bytes], None] | None:
        """Where a pass-through stream attempt's chat translation goes to be stored (None: nothing stored).

        The client gets the upstream's own events; the cache stores the chat answer they amount to.
        """
        if not self.stores:
            return None
        self.recorder = StreamRecorder()  # one per attempt, as for ``watch``
        return self.recorder.feed


def route_name(route: Route) -> str:
    """The resolved tier, else the model, that answers (entries never cross it)."""
    return route.tier or (route.deployments[0].name if route.deployments else route.requested)


def spawn(work: Coroutine[Any, Any, None], what: str) -> None:
    """Run ``work`` in the background; its errors are logged, never raised."""

    async def guarded() -> None:
        try:
            await work
        except Exception:
            logger.exception("response cache: %s failed", what)

    task = asyncio.get_running_loop().create_task(guarded())
    _background.add(task)
    task.add_done_callback(_background.discard)


@dataclass(slots=True)
class CacheProbe:
    """The exact-cache read sent in admission's Redis round trip (``serving.admission.Lookahead``).

    ``queue`` decides and computes the keys for the route being admitted and queues the exact
    layer's ``GET`` (and the semantic scope marker's ``EXISTS``); ``lookup`` then uses the answer
    when the route it gets has the same cache name (a session pin or a long-context preference can
    reorder a model route). Nothing raised here reaches admission: a probe that failed is simply
    not used, and ``lookup`` reads the cache itself.
    """

    exchange: Exchange
    snapshot: Snapshot
    material: Material | None = None  # the body's ``KeyMaterial`` (``serving.requests.ChatRequest.key_material``)
    route_name: str | None = None
    prepared: CacheLookup | None = None
    exact: bytes | None = None
    scoped: bool = False
    _at: tuple[int, int | None] | None = None

    def reserve_usd(self, route: Route, body: dict[str, Any]) -> Decimal:
        """The most the prompt's provider embedding can cost, when the lookup will make one (else 0).

        The embedded text is part of the body and at most ``MAX_EMBED_CHARS`` long: its UTF-8 bytes
        bound its tokens (``prompt_token_bound``'s argument), priced at the embedding model's input price.
        """
        key = self.exchange.key
        if key is None:
            return Decimal(0)
        try:
            policy = cache_policy(self.snapshot, key.tenant_id)
            if not (policy.enabled and policy.semantic_enabled and policy.embedder == "provider"):
                return Decimal(0)  # the common case: no preparation
            found = _prepare(self.exchange, self.snapshot, body, route_name(route), key.tenant_id)
        except Exception:
            logger.exception("response cache: preparing the lookup failed; no embedding reserved")
            return Decimal(0)
        embedder = found.embedder
        if found.keys is None or found.decision.mode is not Mode.FULL or embedder is None or not _billable(embedder):
            return Decimal(0)
        deployment = getattr(embedder, "deployment", None)
        if deployment is None:
            return Decimal(0)
        return max_cost_usd([deployment], len(found.keys.prompt_text.encode()), 0)

    def queue(self, batch: Batch, route: Route, body: dict[str, Any]) -> None:
        self.route_name, self.prepared, self._at = None, None, None
        key = self.exchange.key
        if key is None:
            return
        try:
            name = route_name(route)
            prepared = _prepare(self.exchange, self.snapshot, body, name, key.tenant_id, self.material)
        except Exception:
            logger.exception("response cache: preparing the lookup failed; the cache step will retry it")
            return
        self.route_name, self.prepared = name, prepared
        if prepared.keys is not None and prepared.decision.mode is Mode.FULL:
            self._at = (batch.command("GET", prepared.keys.exact_key), None)
            if prepared.scope is not None:
                self._at = (self._at[0], batch.command("EXISTS", prepared.scope))

    def receive(self, results: list[Any]) -> None:
        if self._at is None:
            return
        get_at, scope_at = self._at
        raw = results[get_at]
        scoped = results[scope_at] if scope_at is not None else 0
        if isinstance(raw, Exception) or isinstance(scoped, Exception):
            logger.error("response cache: the exact lookup failed: %s", raw if isinstance(raw, Exception) else scoped)
            self.route_name, self.prepared = None, None  # the cache step looks again
            return
        self.exact, self.scoped = raw, bool(scoped)

    def result_for(self, route: Route) -> CacheLookup | None:
        """The prepared lookup if it was made for this route's cache name (else None: look again)."""
        if self.prepared is None or self.route_name != route_name(route):
            return None
        return self.prepared


async def lookup(
    exchange: Exchange,
    snapshot: Snapshot,
    body: dict[str, Any],
    route: Route,
    probe: CacheProbe | None = None,
    *,
    material: Material | None = None,
) -> CacheLookup:
    """Decide, then look in the exact and the semantic layer; sets ``exchange.cache_status``.

    ``probe``: the exact layer as read with admission (no round trip of its own when it applies).
    ``material``: where the body's ``KeyMaterial`` comes from when the request computes it once
    (``serving.requests.ChatRequest.key_material``); called only when the cache applies.
    """
    exchange.cache_status = BYPASS
    key = exchange.key
    if key is None:
        return CacheLookup(Decision(Mode.BYPASS, "no key"))
    try:
        return await _lookup(exchange, snapshot, body, route, key.tenant_id, probe, material)
    except Exception:
        logger.exception("response cache lookup failed; answering without the cache")
        exchange.cache_status = BYPASS
        exchange.cache_similarity = None
        return CacheLookup(Decision(Mode.BYPASS, "error"))


def _prepare(
    exchange: Exchange,
    snapshot: Snapshot,
    body: dict[str, Any],
    name: str,
    tenant_id: int,
    material: Material | None = None,
) -> CacheLookup:
    """The decision, keys and embedder for one request on one route (pure: no I/O, no exchange change)."""
    policy = cache_policy(snapshot, tenant_id)
    decision = decide(
        policy,
        endpoint=exchange.endpoint,
        route_name=name,
        body=body,
        directive=client_directive(exchange.request_headers),
    )
    if decision.mode is Mode.BYPASS:
        return CacheLookup(decision, policy)
    keys = cache_keys(
        tenant_id=tenant_id,
        route_name=name,
        skill=exchange.skill,
        body=body,
        client_key=client_cache_key(exchange.request_headers, body),
        material=material(body) if material is not None else None,
    )
    found = CacheLookup(decision, policy, snapshot, keys)
    found.embedder = embedder_for(policy, snapshot) if _embeddable(keys.prompt_text) else None
    found.scope = _scope(tenant_id, keys, found.embedder)
    return found


async def _lookup(
    exchange: Exchange,
    snapshot: Snapshot,
    body: dict[str, Any],
    route: Route,
    tenant_id: int,
    probe: CacheProbe | None,
    material: Material | None,
) -> CacheLookup:
    found = probe.result_for(route) if probe is not None else None
    probed = found is not None
    if found is None:
        found = _prepare(exchange, snapshot, body, route_name(route), tenant_id, material)
    keys, policy = found.keys, found.policy
    if keys is None:  # bypassed
        return found
    exchange.cache_status = MISS
    if found.decision.mode is not Mode.FULL:
        return found
    embedder = found.embedder
    if probed:
        assert probe is not None
        raw, scoped = probe.exact, probe.scoped
        found.hit = CachedAnswer.from_json(raw) if raw else None
    else:
        found.hit, scoped = await store.exact_get_and_scope(keys.exact_key, found.scope)
    if found.hit is not None:
        exchange.cache_status = HIT
        return found
    # An empty scope cannot answer: embed when storing, after the answer — unless embedding is a paid
    # provider call, which is made now, while the request is admitted, and billed on its usage record.
    if embedder is not None and (scoped or _billable(embedder)):
        found.vector = await _embed(embedder, keys.prompt_text, phase="lookup")
        charge_embeddings(exchange, embedder)
    if embedder is not None and found.vector is not None and scoped:
        query = SemanticQuery(tenant_id, keys.namespace, keys.context_hash, embedder.signature, found.vector)
        for candidate in await sync_to_async(store.nearest, thread_sensitive=False)(query):
            if candidate.similarity is None or candidate.similarity < policy.semantic_threshold:
                break
            if same_parameters(candidate.prompt_text, keys.prompt_text):
                found.hit = candidate
                exchange.cache_status = SEMANTIC
                exchange.cache_similarity = round(candidate.similarity, 4)
                break
    return found


def _billable(embedder: Embedder) -> bool:
    return bool(getattr(embedder, "billable", False))


def charge_embeddings(exchange: Exchange, embedder: Embedder) -> None:
    """Bill the provider embedding calls ``embedder`` made for this request (cost and an attempts note)."""
    deployment = getattr(embedder, "deployment", None)
    billed: list[Usage] = getattr(embedder, "billed", [])
    while billed and deployment is not None:
        usage = billed.pop(0)
        cost = cost_usd(deployment, usage)
        exchange.discarded_cost_usd += cost  # paid for and billed with the request, whatever answers it
        exchange.cost_usd += cost
        exchange.attempts.append(
            {
                **attempt_record(deployment, None, started=None),
                "cache_embedding": True,
                "tokens": usage.prompt_tokens,
                "cost_usd": str(cost),
            }
        )


def _embeddable(text: str) -> bool:
    """Whether the prompt is worth embedding: not empty, and not far beyond any embedder's window."""
    return 0 < len(text) <= MAX_EMBED_CHARS


def _scope(tenant_id: int, keys: CacheKeys, embedder: Embedder | None) -> str | None:
    if embedder is None:
        return None
    return store.scope_key(tenant_id, keys.namespace, keys.context_hash, embedder.signature)


async def _embed(embedder: Embedder, text: str, *, phase: str) -> list[float] | None:
    """The text's vector, checked against the embedder's promised size (None when unusable)."""
    CACHE_EMBEDDINGS.labels(phase).inc()
    vector = await embedder.embed(text)
    if vector is not None and len(vector) != embedder.dimensions:
        logger.error(
            "embedder %s returned %d dimensions, configured %d; semantic layer skipped",
            embedder.signature,
            len(vector),
            embedder.dimensions,
        )
        return None
    return vector


async def serve_hit(
    exchange: Exchange, responder: Responder, found: CacheLookup, *, stream: bool, include_usage: bool
) -> None:
    """Answer from the cache: zero upstream cost, the original cost recorded as saved."""
    hit = found.hit
    assert hit is not None
    snapshot = found.snapshot
    exchange.deployment = snapshot.models.get(hit.model) if snapshot else None
    exchange.usage = Usage()
    exchange.cost_usd = exchange.discarded_cost_usd  # no upstream answer; a paid cache embedding, if any
    exchange.cost_saved_usd = hit.cost_usd
    exchange.end_commands.extend(store.hit_commands(hit.entry_id))  # counted with the usage record
    exchange.tokens_saved = {
        **exchange.tokens_saved,
        "cache_prompt": hit.prompt_tokens,
        "cache_completion": hit.completion_tokens,
    }
    chunk_id = f"chatcmpl-{exchange.request_id}"
    exchange.status = 200
    if stream:
        await responder.send_headers(status=200, headers=SSE_HEADERS + exchange.gateway_headers())
        exchange.headers_sent = True
        exchange.first_token_monotonic = time.monotonic()
        for payload in replay_events(hit.response, chunk_id=chunk_id, include_usage=include_usage):
            await responder.send_body(b"data: " + payload + b"\n\n", more_body=True)
        await responder.send_body(f": x-gateway-cost-usd={exchange.cost_usd:.8f}\n\ndata: [DONE]\n\n".encode())
    else:
        body = orjson.dumps({**hit.response, "id": chunk_id, "created": int(time.time())})
        await responder.send_headers(status=200, headers=JSON_HEADERS + exchange.gateway_headers())
        exchange.headers_sent = True
        await responder.send_body(body)


def remember(exchange: Exchange, found: CacheLookup, body: bytes | None = None) -> None:
    """Store the answer being completed (a whole JSON ``body``, or what the stream recorder saw).

    Run from ``exchange.settling``, just before the usage record's round trip: when nothing is left
    to compute, the store's commands join that round trip (``exchange.end_commands``); a prompt
    still to embed, or no reserved entry id at hand, is stored in the background instead.
    """
    if not found.stores or exchange.status != 200 or exchange.key is None or exchange.deployment is None:
        return
    try:
        if body is not None:
            response = orjson.loads(body)
            finish = (response.get("choices") or [{}])[0].get("finish_reason")
            response = response if finish in ("stop", "length", "tool_calls", "function_call") else None
        else:
            response = found.recorder.completion() if found.recorder else None
    except (ValueError, AttributeError, IndexError, TypeError):
        response = None
    if response is None:
        return
    usage = exchange.usage or Usage()
    response.setdefault(
        "usage",
        {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        },
    )
    answer = CachedAnswer(
        entry_id=None,
        response=response,
        model=exchange.deployment.name,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=exchange.cost_usd,
    )
    tenant_id = exchange.key.tenant_id
    embedder = found.embedder
    if found.vector is None and embedder is not None and not _billable(embedder):  # no unbilled paid call
        spawn(_embed_and_store(tenant_id, found, answer, embedder), "storing an answer")
        return
    new = _entry(tenant_id, found, answer, found.vector)
    commands = entry_queue.store_commands(new, scope=found.scope)
    if commands is None:
        spawn(entry_queue.store_entry(new, scope=found.scope), "storing an answer")
    else:
        exchange.end_commands.extend(commands)


async def _embed_and_store(tenant_id: int, found: CacheLookup, answer: CachedAnswer, embedder: Embedder) -> None:
    assert found.keys is not None
    vector = await _embed(embedder, found.keys.prompt_text, phase="store")
    await entry_queue.store_entry(_entry(tenant_id, found, answer, vector), scope=found.scope)


def _entry(tenant_id: int, found: CacheLookup, answer: CachedAnswer, vector: list[float] | None) -> NewEntry:
    keys, embedder = found.keys, found.embedder
    assert keys is not None
    return NewEntry(
        tenant_id=tenant_id,
        namespace=keys.namespace,
        context_hash=keys.context_hash,
        exact_key=keys.exact_key,
        prompt_text=keys.prompt_text,
        answer=answer,
        ttl_seconds=found.policy.ttl_seconds,
        embedder=embedder.signature if embedder is not None and vector is not None else "",
        vector=vector,
    )
