"""The ``/v1/completions`` flow: legacy text completions and fill-in-the-middle (``prompt`` + ``suffix``).

Editors' autocomplete (Continue, for one) calls this. OpenAI-compatible
providers get a pass-through to ``{base_url}/completions``; Ollama gets
``/api/generate`` (``providers.adapters.ollama_text``); Anthropic has no text
completions, so its deployments are left out of the route (none left: 400).
Streams are relayed as chat streams are (``serving.streaming``): keep-alive
comments, usage chunk only when asked, billing on disconnect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway_platform.errors import invalid_request
from providers.adapters import text_completion_adapter_for
from providers.adapters.base import Completion, Deployment, TextCompletionAdapter
from providers.adapters.tokens import estimate_tokens
from routing.resolver import Route
from serving.chat import no_adapter
from serving.exchange import Exchange, Responder
from serving.failover import call_with_failover
from serving.flow import JSON, admitted, measure_list, model_fields, open_request, restrict_route, unsupported
from serving.requests import _expect, parse_json_object
from serving.streaming import (
    TEXT_COMPLETION_CHUNK,
    finish_usage,
    relay_stream,
    route_served,
    send_json,
    stream_with_failover,
)

PROMPT_TYPES = "a string, an array of strings, an array of token integers or an array of token arrays"


@dataclass(frozen=True, slots=True)
class TextCompletionRequest:
    """A validated ``/v1/completions`` body."""

    body: JSON
    model: str
    provider: str | None
    stream: bool
    include_usage: bool
    plain_prompt: bool
    """One text prompt (every provider takes it); else a batch or token ids (OpenAI-compatible only)."""
    prompt_tokens: int
    """Tokens in ``prompt`` and ``suffix``: counted for token arrays, estimated for text."""


def measure_prompt(value: object) -> tuple[bool, int]:
    """(is one text prompt, prompt tokens) of a ``prompt``; a 400 naming ``prompt`` when malformed."""
    if value is None:
        raise invalid_request("Missing required parameter: 'prompt'.", param="prompt")
    if isinstance(value, str):
        return True, estimate_tokens(value)
    if not isinstance(value, list):
        raise invalid_request(f"Invalid type for 'prompt': expected {PROMPT_TYPES}.", param="prompt")
    if not value:
        raise invalid_request("Invalid value for 'prompt': the array must not be empty.", param="prompt")
    measured = measure_list(value)
    if measured is None:
        raise invalid_request(f"Invalid type for 'prompt': expected {PROMPT_TYPES} (not a mix).", param="prompt")
    kind, tokens = measured
    return kind == "text" and len(value) == 1, tokens


def _at_least(data: JSON, name: str, minimum: int) -> None:
    value = _expect(data, name, int, "an integer")
    if value is not None and value < minimum:
        raise invalid_request(f"Invalid value for '{name}': expected an integer of at least {minimum}.", param=name)


def parse_completion_request(raw: bytes) -> TextCompletionRequest:
    """Validate a text completion body; raise a 400 ``GatewayError`` naming the bad field."""
    data = parse_json_object(raw)
    fields = model_fields(data)
    plain_prompt, prompt_tokens = measure_prompt(data.get("prompt"))
    suffix = _expect(data, "suffix", str, "a string")
    stream = _expect(data, "stream", bool, "a boolean") or False
    options = _expect(data, "stream_options", dict, "an object") or {}
    if options and not stream:
        raise invalid_request("'stream_options' is only allowed when 'stream' is true.", param="stream_options")
    include_usage = _expect(options, "include_usage", bool, "a boolean") or False
    _at_least(data, "max_tokens", 0)
    _at_least(data, "logprobs", 0)
    for name in ("n", "best_of"):
        _at_least(data, name, 1)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        _expect(data, name, (int, float), "a number")
    _expect(data, "stop", (str, list), "a string or an array of strings")
    _expect(data, "echo", bool, "a boolean")
    _expect(data, "seed", int, "an integer")
    _expect(data, "user", str, "a string")
    return TextCompletionRequest(
        body=fields.body,
        model=fields.model,
        provider=fields.provider,
        stream=stream,
        include_usage=include_usage,
        plain_prompt=plain_prompt,
        prompt_tokens=prompt_tokens + (estimate_tokens(suffix) if suffix else 0),
    )


def completions_route(route: Route, request: TextCompletionRequest) -> Route:
    """The deployments that can complete this request, in route order; a 400 when there are none."""
    route = restrict_route(
        route,
        lambda d: text_completion_adapter_for(d.provider.kind) is not None,
        lambda r: unsupported(r, "text completions"),
    )
    if request.plain_prompt:
        return route
    return restrict_route(
        route,
        lambda d: getattr(text_completion_adapter_for(d.provider.kind), "accepts_token_input", False),
        lambda r: invalid_request(
            f"The model '{r.requested}' takes one text prompt per request: batches and token arrays in 'prompt' "
            "need an OpenAI-compatible provider.",
            param="prompt",
        ),
    )


def _adapter(deployment: Deployment) -> TextCompletionAdapter:
    adapter = text_completion_adapter_for(deployment.provider.kind)
    if adapter is None:
        raise no_adapter(deployment)
    return adapter


def _estimate(request: TextCompletionRequest) -> Callable[[], int]:
    return lambda: request.prompt_tokens


async def serve_completions(exchange: Exchange, responder: Responder, raw: bytes) -> None:
    """Answer one ``/v1/completions`` request, streamed or whole (errors propagate as ``GatewayError``)."""
    request, opened = await open_request(exchange, raw, parse_completion_request)
    route = completions_route(opened.route, request)
    async with admitted(exchange, opened, route, request.prompt_tokens, request.body):
        if request.stream:
            await stream_with_failover(
                exchange, route, lambda deployment, last: _stream_from(exchange, responder, request, deployment, last)
            )
        else:
            await _serve_whole(exchange, responder, request, route)


async def _serve_whole(exchange: Exchange, responder: Responder, request: TextCompletionRequest, route: Route) -> None:
    async def attempt(deployment: Deployment) -> Completion:
        return await _adapter(deployment).complete_text(deployment, request.body)

    completion = await call_with_failover(exchange, route, attempt)
    exchange.deployment = route_served(exchange, route)
    finish_usage(exchange, completion.usage, _estimate(request), completion.estimate_chars())
    await send_json(exchange, responder, completion.body)


async def _stream_from(
    exchange: Exchange, responder: Responder, request: TextCompletionRequest, deployment: Deployment, last: bool
) -> None:
    await relay_stream(
        exchange,
        responder,
        deployment,
        aiter(_adapter(deployment).stream_text(deployment, request.body)),
        include_usage=request.include_usage,
        may_commit=last,
        estimate_prompt=_estimate(request),
        shape=TEXT_COMPLETION_CHUNK,
    )
