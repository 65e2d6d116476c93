"""The provider adapter interface and the typed values that cross it.

An adapter turns an OpenAI-shaped chat request into one upstream call in its
provider's wire format and turns the answer back into OpenAI shape. Each wire
format is one module with pure ``build_*`` / ``parse_*`` functions plus the
async calls that use the shared pooled HTTP client (``providers.http``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Protocol

import orjson

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """An upstream endpoint as the hot path sees it (credential already resolved)."""

    id: int
    name: str
    kind: str
    base_url: str
    api_key: str | None
    connect_timeout: float
    read_timeout: float
    total_timeout: float
    max_connections: int
    # Extra headers sent on every call (values resolved from environment variables; never logged).
    extra_headers: tuple[tuple[str, str], ...] = ()
    # Azure OpenAI: the ``api-version`` query parameter.
    api_version: str = ""
    # AWS Bedrock: the region requests are signed for.
    region: str = ""
    # A tenant's own provider: only that tenant's requests may use it (None: every tenant).
    tenant_id: int | None = None
    # OpenAI-compatible upstreams that serve the Responses API: /v1/responses passes through to them.
    supports_responses: bool = False


@dataclass(frozen=True, slots=True)
class Deployment:
    """A model on its provider: one thing a request can be sent to."""

    model_id: int
    name: str
    upstream_model: str
    provider: ProviderConfig
    input_cost_per_million: Decimal
    output_cost_per_million: Decimal
    context_window: int
    max_output_tokens: int | None
    # Provider prompt caching: None charges those tokens at the input price (no discount, no surcharge).
    cache_read_cost_per_million: Decimal | None = None
    cache_write_cost_per_million: Decimal | None = None


@dataclass(slots=True)
class Usage:
    """Tokens of one upstream call. ``prompt_tokens`` includes the cache reads and writes."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # read from the provider's prompt cache
    estimated: bool = False
    cache_write_tokens: int = 0  # written to the provider's prompt cache (Anthropic charges extra)


CompletionReader = Callable[[bytes], tuple[str, str | None]]


class Completion:
    """A whole (non-streamed) answer, already in OpenAI ``chat.completion`` shape.

    ``raw``: pass-through, the upstream's own answer, verbatim, for a client that speaks the
    upstream's API. An answer relayed as the upstream sent it may come ``unread``: its usage was
    read from the tail of ``body``, and ``text`` and ``finish_reason`` are parsed from it only when
    a feature asks for them (cascade checks, a summary, a token estimate), as ``chunk_text`` does
    for stream events.
    """

    __slots__ = ("_finish_reason", "_reader", "_text", "body", "raw", "usage")

    def __init__(
        self, body: bytes, usage: Usage | None, text: str, finish_reason: str | None, raw: bytes | None = None
    ) -> None:
        self.body = body
        self.usage = usage
        self.raw = raw
        self._text = text
        self._finish_reason = finish_reason
        self._reader: CompletionReader | None = None

    @classmethod
    def unread(cls, body: bytes, usage: Usage, reader: CompletionReader) -> Completion:
        """An answer whose text and finish reason ``reader`` reads from ``body`` when first asked for.

        ``reader`` must not raise: an answer it cannot read has no text and no finish reason.
        """
        completion = cls(body, usage, "", None)
        completion._reader = reader
        return completion

    @property
    def is_read(self) -> bool:
        """Whether ``text`` and ``finish_reason`` are known without parsing ``body``."""
        return self._reader is None

    def _read(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            self._text, self._finish_reason = reader(self.body)

    @property
    def text(self) -> str:
        self._read()
        return self._text

    @property
    def finish_reason(self) -> str | None:
        self._read()
        return self._finish_reason

    def estimate_chars(self) -> int:
        """Characters of the text to estimate completion tokens from: 0 when the upstream reported usage.

        For ``finish_usage``, which only estimates when ``usage`` is None; an unread answer stays unread.
        """
        return 0 if self.usage is not None else len(self.text)

    def __repr__(self) -> str:
        return f"Completion(usage={self.usage!r}, read={self.is_read}, body={self.body[:60]!r}...)"


@dataclass(slots=True)
class StreamChunk:
    """One streamed event: ``data`` is an OpenAI chunk payload to forward (or None)."""

    data: bytes | None
    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    usage_only: bool = False
    # Another chunk of the same network read follows at once (the relay sends them in one write).
    more: bool = False
    # Relayed without reading ``data`` (it carries neither usage nor a finish reason): ``text`` is
    # empty until ``chunk_text`` reads it, for the few features that need the text of every event.
    unread: bool = False
    # Pass-through: the upstream's own SSE event, verbatim (``data`` then only feeds accounting and the cache).
    raw: bytes | None = None
    # A run of unread events of one network read, already framed as the client gets them (``data: {…}\n\n``
    # each): relayed in one piece with no object per event; ``unpack`` splits it for features that need each.
    sse: bytes | None = None


def delta_text(data: object) -> str:
    """The text of an OpenAI chunk (``choices[0].delta.content``, or a legacy completion's ``text``)."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    delta = choice.get("delta") or {}
    content = delta.get("content", choice.get("text")) if isinstance(delta, dict) else choice.get("text")
    return content if isinstance(content, str) else ""


def chunk_text(chunk: StreamChunk) -> str:
    """The chunk's text (a run's: all its events'), read from its ``data`` if the adapter relayed it unread."""
    if chunk.unread:
        chunk.unread = False
        if chunk.sse is not None:
            chunk.text = "".join(chunk_text(event) for event in unpack(chunk))
        else:
            chunk.text = delta_text(orjson.loads(chunk.data)) if chunk.data is not None else ""
    return chunk.text


SSE_DATA = b"data: "
EVENT_END = b"\n\n"


def unpack(chunk: StreamChunk) -> list[StreamChunk]:
    """A run's events as one unread chunk each (all but the last marked ``more``); any other chunk alone."""
    if chunk.sse is None:
        return [chunk]
    events = [
        StreamChunk(data=event[len(SSE_DATA) :], unread=True, more=True)
        for event in chunk.sse.split(EVENT_END)
        if event
    ]
    events[-1].more = chunk.more
    return events


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """A request in an upstream's own API, to be sent as the client wrote it (pass-through).

    ``api`` names the wire format (``anthropic.messages``, ``openai.responses``); ``body`` is the
    client's body without the gateway's own fields (``model`` is replaced per deployment);
    ``headers`` are the client's API headers worth forwarding (e.g. ``anthropic-beta``) and
    ``query`` its query string (e.g. ``beta=true``).
    """

    api: str
    body: JSON
    headers: tuple[tuple[str, str], ...] = ()
    query: str = ""


def native_body(deployment: Deployment, request: NativeRequest, *, stream: bool) -> JSON:
    """The client's own body for ``deployment``: ``model`` replaced, ``stream`` set as the call is made."""
    body = {**request.body, "model": deployment.upstream_model}
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


class PassthroughAdapter(Protocol):
    """A wire format that can take a request in its own API unchanged (``NativeRequest``).

    Answers carry both the OpenAI shape (``body`` / ``data``: accounting, cache, quality checks)
    and the upstream's own bytes (``raw``), which reach a client that speaks the same API as they came.
    """

    api: ClassVar[str]

    def serves(self, deployment: Deployment) -> bool:
        """Whether ``deployment`` speaks this API natively."""
        ...

    async def complete_native(self, deployment: Deployment, request: NativeRequest, *, caching: bool) -> Completion:
        """Send the native request (not streamed); ``caching``: the gateway's prompt caching may be added."""
        ...

    def stream_native(
        self, deployment: Deployment, request: NativeRequest, *, caching: bool, translate: bool = True
    ) -> AsyncIterator[StreamChunk]:
        """Send the native request streamed; chunks carry the upstream's events in ``raw``.

        ``translate``: also the chat chunks they amount to; else only each event's text and the
        usage, for accounting (nothing reads the chat shape: no cache store, answer check or hold).
        """
        ...


class ChatAdapter(Protocol):
    """What every wire format implements for ``/v1/chat/completions``."""

    kind: ClassVar[str]

    async def complete(self, deployment: Deployment, body: JSON) -> Completion:
        """Send a non-streaming chat request; raise ``UpstreamError`` on failure."""
        ...

    def stream(self, deployment: Deployment, body: JSON) -> AsyncIterator[StreamChunk]:
        """Send a streaming chat request and yield OpenAI-shaped chunks as they arrive."""
        ...


@dataclass(slots=True)
class EmbeddingResult:
    """A whole ``/v1/embeddings`` answer, already in OpenAI shape (``usage`` None when unreported)."""

    body: bytes
    usage: Usage | None


class EmbeddingsAdapter(Protocol):
    """What a wire format implements for ``/v1/embeddings``."""

    kind: ClassVar[str]
    accepts_token_input: ClassVar[bool]
    """Whether ``input`` may be token arrays (only OpenAI-compatible upstreams take them)."""

    async def embed(self, deployment: Deployment, body: JSON) -> EmbeddingResult:
        """Send an OpenAI-shaped embeddings request; answer in OpenAI shape or raise ``GatewayError``."""
        ...


class TextCompletionAdapter(Protocol):
    """What a wire format implements for ``/v1/completions`` (legacy text and fill-in-the-middle).

    Answers reuse ``Completion`` / ``StreamChunk``, carrying OpenAI ``text_completion`` JSON.
    """

    kind: ClassVar[str]
    accepts_token_input: ClassVar[bool]
    """Whether ``prompt`` may be token arrays or a batch of prompts."""

    async def complete_text(self, deployment: Deployment, body: JSON) -> Completion:
        """Send a non-streaming text completion request; raise ``GatewayError`` on failure."""
        ...

    def stream_text(self, deployment: Deployment, body: JSON) -> AsyncIterator[StreamChunk]:
        """Send a streaming text completion request and yield OpenAI-shaped chunks as they arrive."""
        ...
