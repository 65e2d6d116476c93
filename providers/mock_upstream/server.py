"""The mock upstream: a fake LLM provider speaking OpenAI, Anthropic and Ollama.

A plain aiohttp application (no Django), used by integration tests over real
HTTP and by ``make run`` when no provider credentials exist. Replies are
deterministic (see :mod:`providers.mock_upstream.replies`), pacing is
configurable, and faults are injected per request with ``[[mock: ...]]``
markers (see :mod:`providers.mock_upstream.directives`).

Routes: ``POST /v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/responses``,
``GET /v1/models`` (OpenAI); ``POST /v1/messages`` (Anthropic); ``POST
/api/chat``, ``/api/generate``, ``/api/embed``, ``GET /api/tags`` (Ollama);
``POST /openai/deployments/{name}/chat/completions|embeddings?api-version=V`` (Azure
OpenAI, ``api-key`` header), ``GET /openai/models``; ``POST
/v1beta/models/{model}:generateContent|streamGenerateContent`` (Gemini, ``x-goog-api-key``;
function calls carry a ``thoughtSignature`` that ``gemini-3*`` models require back), ``GET
/v1beta/models``; ``POST /model/{id}/converse|converse-stream`` (Bedrock, SigV4 checked
against ``bedrock_format.MOCK_AWS_SECRET``), ``GET /foundation-models`` (an access key
starting ``NOLIST`` lacks the permission); control: ``GET|DELETE
/_mock/events`` (request records, last 1000 unless told otherwise), ``POST /_mock/reset`` (records
and prompt cache), ``GET /_mock/health``.

Each request record is also the mock's billing ledger: ``usage`` holds the tokens the
answer was built with (``prompt_tokens``, ``completion_tokens``, ``cached_prompt_tokens``)
and ``chunks_sent`` how many content chunks of a stream were written before it ended, so
tests can price what a real provider would have charged and compare it with the gateway's
usage events.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiohttp import web

from providers.mock_upstream import (
    anthropic_format,
    bedrock_format,
    builders,
    gemini_format,
    ollama_format,
    openai_format,
)
from providers.mock_upstream.builders import Builder
from providers.mock_upstream.replies import BadRequest, Reply, StreamPlan, built_replies, new_id

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
Api = Literal["openai", "anthropic", "ollama", "azure", "gemini", "bedrock"]

OPENAI_MODELS = ["mock-gpt", "mock-gpt-mini", "mock-embedding"]
ANTHROPIC_MODELS = ["mock-claude"]
OLLAMA_MODELS = ["mock-llama:latest", "mock-embed:latest"]
GEMINI_MODELS = ["gemini-2.5-flash", "gemini-3-pro-preview"]
BEDROCK_MODELS = ["anthropic.claude-sonnet-4-5-v1:0"]
MAX_EVENTS = 1000
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-security-token")
HANG_SECONDS = 3600.0


@dataclass(frozen=True)
class MockConfig:
    ttft: float = 0.0
    tokens_per_second: float = 0.0
    latency: float = 0.0


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.kind = kind  # Bedrock's x-amzn-ErrorType


class _Dropped(Exception):
    """Abort the connection without finishing the response."""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONFIG_KEY = web.AppKey("mock_upstream_config", MockConfig)
EVENTS_KEY: web.AppKey[deque[JSON]] = web.AppKey("mock_upstream_events")
CACHE_KEY = web.AppKey("mock_upstream_prompt_cache", anthropic_format.PromptCache)


# --------------------------------------------------------------------------- plumbing


def _json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _error_response(api: Api, error: ApiError, headers: dict[str, str]) -> web.Response:
    payload: JSON
    if api == "anthropic":
        payload = anthropic_format.error_body(error.status, error.message)
    elif api == "ollama":
        payload = ollama_format.error_body(error.message)
    elif api == "gemini":
        payload = gemini_format.error_body(error.status, error.message)
    elif api == "bedrock":
        payload = bedrock_format.error_body(error.message)
        kind = error.kind or bedrock_format.ERROR_TYPES.get(error.status, "InternalServerException")
        headers = {**headers, "x-amzn-ErrorType": kind}
    else:
        payload = openai_format.error_body(error.status, error.message, param=error.param)
    if error.retry_after is not None:
        headers = {**headers, "Retry-After": f"{error.retry_after:g}"}
    return _json_response(payload, error.status, headers)


def _check_auth(request: web.Request, api: Api) -> None:
    if api == "azure":
        if not request.headers.get("api-key"):
            raise ApiError(401, "Access denied due to missing subscription key (api-key header).")
        if not request.query.get("api-version"):
            raise ApiError(404, "Resource not found: the api-version query parameter is required.")
        return
    if api == "gemini":
        if not (request.headers.get("x-goog-api-key") or request.query.get("key")):
            raise ApiError(403, "Method doesn't allow unregistered callers. Please use API Key.")
        return
    if api == "bedrock":
        return  # the signature covers the body: checked in _serve once it is read
    if api == "anthropic":
        # Recent official SDKs send the key as ``Authorization: Bearer``; older ones
        # (and most gateways) as ``x-api-key``. Either is accepted, neither is a 401.
        bearer = request.headers.get("Authorization", "")
        if not request.headers.get("x-api-key") and not (bearer.lower().startswith("bearer ") and bearer[7:].strip()):
            raise ApiError(401, "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            raise ApiError(400, "anthropic-version: header is required")
        return
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Invalid Authorization header: expected 'Bearer <api key>'")


async def _check_signature(request: web.Request) -> None:
    try:
        bedrock_format.verify_signature(
            # The path as sent (still percent-encoded): the signer encoded that one.
            method=request.method,
            url=f"{request.scheme}://{request.host}{request.raw_path}",
            headers=request.headers,
            body=await request.read(),
        )
    except bedrock_format.AuthError as exc:
        raise ApiError(exc.status, exc.message, kind=exc.kind) from None


def body_digest(body: JSON) -> str:
    """SHA-256 of a request body without ``model`` (keys sorted): tests compare it with what the client sent."""
    rest = {k: v for k, v in body.items() if k != "model"}
    return hashlib.sha256(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _read_json(request: web.Request) -> JSON:
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _new_record(request: web.Request) -> JSON:
    record: JSON = {
        "id": request.headers.get("X-Request-Id") or new_id("mockreq_"),
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "model": None,
        "stream": False,
        "status": None,
        "completed": False,
        "cancelled": False,
        "dropped": False,
        "directives": {},
        # What arrived, credentials left out (tests check configured extra headers reach the provider).
        "headers": {k.lower(): v for k, v in request.headers.items() if k.lower() not in CREDENTIAL_HEADERS},
        # Which credential came, without keeping it: SHA-256 of the first credential header's value.
        "credential_sha256": next(
            (
                hashlib.sha256(request.headers[h].encode()).hexdigest()
                for h in CREDENTIAL_HEADERS
                if h in request.headers
            ),
            None,
        ),
        "started_at": time.time(),
        "ended_at": None,
        "usage": None,  # the ledger: tokens the answer was built with (set once rendered)
        "chunks_sent": None,  # streams: content chunks written before the stream ended
    }
    request.app[EVENTS_KEY].append(record)
    return record


async def _write_stream(
    request: web.Request,
    plan: StreamPlan,
    headers: dict[str, str],
    *,
    ttft: float,
    tokens_per_second: float,
    drop_after: int | None,
    record: JSON,
) -> web.StreamResponse:
    record["chunks_sent"] = 0
    response = web.StreamResponse(
        status=200,
        headers={
            **headers,
            "Content-Type": plan.content_type,
            "Cache-Control": "no-cache",
        },
    )
    await response.prepare(request)
    if drop_after == 0:
        raise _Dropped
    await _sleep(ttft)
    for chunk in plan.preamble:
        await response.write(chunk)
    interval = 1.0 / tokens_per_second if tokens_per_second > 0 else 0.0
    for index, chunk in enumerate(plan.content):
        if index and interval:
            await asyncio.sleep(interval)
        await response.write(chunk)
        record["chunks_sent"] = index + 1
        if drop_after is not None and index + 1 >= drop_after:
            raise _Dropped
    if drop_after is not None:  # more chunks requested than exist: drop before the trailer
        raise _Dropped
    for chunk in plan.trailer:
        await response.write(chunk)
    await response.write_eof()
    return response


async def _serve(request: web.Request, api: Api, builder: Builder) -> web.StreamResponse:
    record = _new_record(request)
    headers = {"x-request-id": record["id"]}
    try:
        try:
            _check_auth(request, api)
            if api == "bedrock":
                await _check_signature(request)
            body = await _read_json(request)
            record.update(fields=sorted(body), body_sha256=body_digest(body))
            prepared = builder(body, request.app[CACHE_KEY])
        except BadRequest as exc:
            raise ApiError(400, exc.message, param=exc.param) from exc
        directives = prepared.directives
        record.update(
            model=prepared.model,
            stream=prepared.stream,
            directives=directives.as_dict(),
        )
        await _sleep(directives.delay)
        if directives.hang:
            await asyncio.sleep(HANG_SECONDS)
        if directives.status is not None and directives.status >= 400:
            retry_after = None
            if directives.status in (429, 503):
                retry_after = directives.retry_after if directives.retry_after is not None else 1.0
            raise ApiError(
                directives.status,
                f"mock upstream: injected HTTP {directives.status}",
                retry_after=retry_after,
            )
        config = request.app[CONFIG_KEY]
        ttft = directives.ttft if directives.ttft is not None else config.ttft
        built: list[Reply] = []
        reset = built_replies.set(built)
        try:
            rendered = prepared.render()
        finally:
            built_replies.reset(reset)
        record["usage"] = _ledger(built, rendered)
        if isinstance(rendered, StreamPlan):
            tps = directives.tps if directives.tps is not None else config.tokens_per_second
            response = await _write_stream(
                request,
                rendered,
                headers,
                ttft=ttft,
                tokens_per_second=tps,
                drop_after=directives.drop_after,
                record=record,
            )
        else:
            await _sleep(ttft + config.latency)
            if directives.drop_after is not None:
                raise _Dropped
            response = _json_response(rendered, 200, headers)
        record.update(status=response.status, completed=True)
        return response
    except ApiError as exc:
        record.update(status=exc.status, completed=True)
        return _error_response(api, exc, headers)
    except _Dropped:
        record["dropped"] = True
        logger.info("mock upstream: dropping connection for %s %s", request.path, record["id"])
        if request.transport is not None:
            request.transport.close()
        # aiohttp handles CancelledError without a 500 response or a traceback.
        raise asyncio.CancelledError from None
    except (asyncio.CancelledError, ConnectionResetError) as exc:
        record["cancelled"] = True
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise asyncio.CancelledError from exc
    finally:
        record["ended_at"] = time.time()


def _ledger(built: list[Reply], rendered: JSON | StreamPlan) -> JSON | None:
    """The tokens an answer was built with: its reply's, or an embeddings body's prompt tokens."""
    if built:
        reply = built[-1]
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "cached_prompt_tokens": reply.cached_prompt_tokens,
        }
    usage = rendered.get("usage") if isinstance(rendered, dict) else None
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        return {"prompt_tokens": usage["prompt_tokens"], "completion_tokens": 0, "cached_prompt_tokens": 0}
    return None


def _endpoint(api: Api, builder: Builder) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _serve(request, api, builder)

    handler.__name__ = builder.__name__.lstrip("_")
    return handler


def _path_endpoint(api: Api, build: Callable[..., builders.Prepared], stream: bool | None = None) -> Handler:
    """A route whose model (and streaming choice) are in the URL, not the body."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if api == "gemini":
            model, _, action = request.match_info["target"].rpartition(":")
            if action not in ("generateContent", "streamGenerateContent"):
                return _error_response(api, ApiError(404, f"unknown method {action!r}"), {})
            wants_stream = action == "streamGenerateContent"
        else:
            model = request.match_info["model"]
            wants_stream = bool(stream)

        def builder(body: JSON, cache: anthropic_format.PromptCache) -> builders.Prepared:
            if api == "azure":  # Azure ignores the body's model: the deployment in the URL decides
                return build({**body, "model": model}, cache)
            return build(body, cache, model=model, stream=wants_stream)

        return await _serve(request, api, builder)

    return handler


async def _openai_models(request: web.Request) -> web.StreamResponse:
    try:
        _check_auth(request, "openai")
    except ApiError as exc:
        return _error_response("openai", exc, {})
    return _json_response(openai_format.models_body(OPENAI_MODELS + ANTHROPIC_MODELS))


async def _azure_models(request: web.Request) -> web.StreamResponse:
    try:
        _check_auth(request, "azure")
    except ApiError as exc:
        return _error_response("azure", exc, {})
    return _json_response(openai_format.models_body(OPENAI_MODELS))


async def _gemini_models(request: web.Request) -> web.StreamResponse:
    try:
        _check_auth(request, "gemini")
    except ApiError as exc:
        return _error_response("gemini", exc, {})
    return _json_response({"models": [{"name": f"models/{m}", "displayName": m} for m in GEMINI_MODELS]})


async def _bedrock_models(request: web.Request) -> web.StreamResponse:
    """``ListFoundationModels``; an access key starting ``NOLIST`` lacks the permission (AccessDenied)."""
    try:
        await _check_signature(request)
        if request.headers.get("Authorization", "").split("Credential=", 1)[-1].startswith("NOLIST"):
            raise ApiError(
                403,
                "User is not authorized to perform: bedrock:ListFoundationModels",
                kind="AccessDeniedException",
            )
    except ApiError as exc:
        return _error_response("bedrock", exc, {})
    return _json_response({"modelSummaries": [{"modelId": m, "providerName": "Mock"} for m in BEDROCK_MODELS]})


async def _ollama_tags(request: web.Request) -> web.StreamResponse:
    return _json_response(ollama_format.tags_body(OLLAMA_MODELS))


async def _health(request: web.Request) -> web.StreamResponse:
    return _json_response({"status": "ok"})


async def _events(request: web.Request) -> web.StreamResponse:
    records = request.app[EVENTS_KEY]
    return _json_response(list(records))


async def _clear_events(request: web.Request) -> web.StreamResponse:
    request.app[EVENTS_KEY].clear()
    return _json_response({"cleared": True})


async def _reset(request: web.Request) -> web.StreamResponse:
    """Clear the request records and the prompt cache."""
    request.app[EVENTS_KEY].clear()
    request.app[CACHE_KEY].clear()
    return _json_response({"reset": True})


# --------------------------------------------------------------------------- public API


def create_app(
    *, ttft: float = 0.0, tokens_per_second: float = 0.0, latency: float = 0.0, max_events: int = MAX_EVENTS
) -> web.Application:
    """The mock upstream application.

    ``ttft``: seconds before the first token (streaming) or before the answer;
    ``tokens_per_second``: pacing between streamed chunks (0 = no pacing);
    ``latency``: extra seconds for non-streaming answers;
    ``max_events``: request records kept for ``/_mock/events`` (the oldest are dropped).
    """
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[CONFIG_KEY] = MockConfig(ttft=ttft, tokens_per_second=tokens_per_second, latency=latency)
    app[EVENTS_KEY] = deque(maxlen=max_events)
    app[CACHE_KEY] = anthropic_format.PromptCache()
    app.router.add_post("/v1/chat/completions", _endpoint("openai", builders.openai_chat))
    app.router.add_post("/v1/completions", _endpoint("openai", builders.openai_completion))
    app.router.add_post("/v1/embeddings", _endpoint("openai", builders.openai_embeddings))
    app.router.add_post("/v1/responses", _endpoint("openai", builders.openai_responses))
    app.router.add_get("/v1/models", _openai_models)
    app.router.add_post("/v1/messages", _endpoint("anthropic", builders.anthropic_messages))
    app.router.add_post("/api/chat", _endpoint("ollama", builders.ollama_chat))
    app.router.add_post("/api/generate", _endpoint("ollama", builders.ollama_generate))
    app.router.add_post("/api/embed", _endpoint("ollama", builders.ollama_embed))
    app.router.add_get("/api/tags", _ollama_tags)
    app.router.add_post("/openai/deployments/{model}/chat/completions", _path_endpoint("azure", builders.openai_chat))
    app.router.add_post("/openai/deployments/{model}/embeddings", _path_endpoint("azure", builders.openai_embeddings))
    app.router.add_post("/v1beta/models/{target}", _path_endpoint("gemini", builders.gemini_generate))
    app.router.add_post("/model/{model}/converse", _path_endpoint("bedrock", builders.bedrock_converse, False))
    app.router.add_post("/model/{model}/converse-stream", _path_endpoint("bedrock", builders.bedrock_converse, True))
    app.router.add_get("/openai/models", _azure_models)
    app.router.add_get("/v1beta/models", _gemini_models)
    app.router.add_get("/foundation-models", _bedrock_models)
    app.router.add_get("/_mock/health", _health)
    app.router.add_get("/_mock/events", _events)
    app.router.add_delete("/_mock/events", _clear_events)
    app.router.add_post("/_mock/reset", _reset)
    return app


async def start_mock(host: str = "127.0.0.1", port: int = 0, **opts: Any) -> tuple[web.AppRunner, int]:
    """Start the mock on ``host:port`` (0 = any free port); return (runner, port).

    ``opts`` are :func:`create_app`'s keywords. Stop with ``await runner.cleanup()``.
    """
    runner = web.AppRunner(create_app(**opts), handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    return runner, bound_port
