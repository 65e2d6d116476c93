"""The ``/v1/embeddings`` flow: validate, route to deployments that embed, call with failover, answer.

OpenAI-compatible providers get the body as sent (token arrays too) and
their answer is forwarded byte for byte; Ollama's ``/api/embed`` answer is
translated (``providers.adapters.ollama_text``). Anthropic has no
embeddings: its deployments are left out of the route, and a model with
none left is a 400. Vectors from different models live in different spaces,
so the global local fallback is not appended to a tier's route here (a tier
that lists it explicitly keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway_platform.config.snapshot import Snapshot
from gateway_platform.errors import GatewayError, invalid_request
from providers.adapters import embedding_adapter_for
from providers.adapters.base import Deployment, EmbeddingResult
from providers.adapters.tokens import estimate_tokens
from routing.resolver import Route
from serving.chat import no_adapter
from serving.exchange import Exchange, Responder
from serving.failover import call_with_failover
from serving.flow import JSON, admitted, measure_list, model_fields, open_request, restrict_route, unsupported
from serving.requests import _expect, parse_json_object
from serving.streaming import finish_usage, route_served, send_json

MAX_INPUTS = 2048
ENCODING_FORMATS = ("float", "base64")
INPUT_TYPES = "a string, an array of strings, an array of token integers or an array of token arrays"


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    """A validated ``/v1/embeddings`` body."""

    body: JSON
    model: str
    provider: str | None
    token_input: bool
    """``input`` is token ids (only OpenAI-compatible providers take those)."""
    prompt_tokens: int
    """Tokens in ``input``: counted for token arrays, estimated for text."""
    stream: bool = False


def _bad_input(message: str) -> GatewayError:
    return invalid_request(message, param="input")


def measure_input(value: object) -> tuple[bool, int]:
    """(is token input, prompt tokens) of an embeddings ``input``; a 400 naming ``input`` when malformed."""
    if value is None:
        raise _bad_input("Missing required parameter: 'input'.")
    if isinstance(value, str):
        if not value:
            raise _bad_input("Invalid value for 'input': the string must not be empty.")
        return False, estimate_tokens(value)
    if not isinstance(value, list):
        raise _bad_input(f"Invalid type for 'input': expected {INPUT_TYPES}.")
    if not value:
        raise _bad_input("Invalid value for 'input': the array must not be empty.")
    if len(value) > MAX_INPUTS:
        raise _bad_input(f"Invalid value for 'input': at most {MAX_INPUTS} inputs per request.")
    measured = measure_list(value)
    if measured is None:
        raise _bad_input(f"Invalid type for 'input': expected {INPUT_TYPES} (not a mix).")
    kind, tokens = measured
    if kind == "text" and not all(value):
        raise _bad_input("Invalid value for 'input': strings must not be empty.")
    return kind == "tokens", tokens


def parse_embeddings_request(raw: bytes) -> EmbeddingsRequest:
    """Validate an embeddings body; raise a 400 ``GatewayError`` naming the bad field."""
    data = parse_json_object(raw)
    fields = model_fields(data)
    token_input, prompt_tokens = measure_input(data.get("input"))
    dimensions = _expect(data, "dimensions", int, "an integer")
    if dimensions is not None and dimensions < 1:
        raise invalid_request("Invalid value for 'dimensions': expected an integer of at least 1.", param="dimensions")
    encoding_format = _expect(data, "encoding_format", str, "a string")
    if encoding_format is not None and encoding_format not in ENCODING_FORMATS:
        raise invalid_request(
            "Invalid value for 'encoding_format': expected 'float' or 'base64'.", param="encoding_format"
        )
    _expect(data, "user", str, "a string")
    return EmbeddingsRequest(
        body=fields.body,
        model=fields.model,
        provider=fields.provider,
        token_input=token_input,
        prompt_tokens=prompt_tokens,
    )


def without_implicit_fallback(snapshot: Snapshot, route: Route) -> Route:
    """The route without the local fallback the resolver appends to tiers (unless the tier lists it)."""
    fallback = snapshot.local_fallback
    tier = snapshot.tiers.get(route.tier) if route.tier else None
    if fallback is None or tier is None or fallback in tier.deployments or fallback not in route.deployments:
        return route
    return replace(route, deployments=tuple(d for d in route.deployments if d != fallback))


def embeddings_route(snapshot: Snapshot, route: Route, request: EmbeddingsRequest) -> Route:
    """The deployments that can embed this request, in route order; a 400 when there are none."""
    route = restrict_route(
        without_implicit_fallback(snapshot, route),
        lambda d: embedding_adapter_for(d.provider.kind) is not None,
        lambda r: unsupported(r, "embeddings"),
    )
    if not request.token_input:
        return route
    return restrict_route(
        route,
        lambda d: getattr(embedding_adapter_for(d.provider.kind), "accepts_token_input", False),
        lambda r: invalid_request(
            f"The model '{r.requested}' only embeds text: token arrays in 'input' need an OpenAI-compatible "
            "provider. Send the text instead.",
            param="input",
        ),
    )


async def serve_embeddings(exchange: Exchange, responder: Responder, raw: bytes) -> None:
    """Answer one ``/v1/embeddings`` request (errors propagate as ``GatewayError``)."""
    request, opened = await open_request(exchange, raw, parse_embeddings_request)
    route = embeddings_route(opened.snapshot, opened.route, request)

    async def attempt(deployment: Deployment) -> EmbeddingResult:
        adapter = embedding_adapter_for(deployment.provider.kind)
        if adapter is None:
            raise no_adapter(deployment)
        return await adapter.embed(deployment, request.body)

    async with admitted(exchange, opened, route, request.prompt_tokens, request.body, produces_output=False):
        result = await call_with_failover(exchange, route, attempt)
        exchange.deployment = route_served(exchange, route)
        finish_usage(exchange, result.usage, lambda: request.prompt_tokens, 0)
        await send_json(exchange, responder, result.body)
