"""OpenAI-compatible chat, text completions and embeddings: a pass-through with usage accounting.

The request body is forwarded as the client sent it (model swapped for the
upstream id) and answers are forwarded byte for byte; the gateway only reads
them to account usage. Streams always ask the upstream for usage; the final
usage-only chunk is dropped again unless the client asked for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

import orjson

from gateway_platform.logging import request_id_var
from providers import errors, http
from providers.adapters.base import (
    JSON,
    Completion,
    Deployment,
    EmbeddingResult,
    ProviderConfig,
    StreamChunk,
    Usage,
    delta_text,
)


def build_headers(provider: ProviderConfig) -> dict[str, str]:
    # The request id travels upstream too, so one id traces a call end to end.
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id_var.get()}
    if provider.api_key:
        headers["Authorization"] = f"Bearer {provider.api_key}"
    return headers


def build_chat_request(deployment: Deployment, body: JSON, *, stream: bool) -> JSON:
    """The upstream body: the client's body for the upstream model (streams always ask for usage)."""
    payload = dict(body)
    payload["model"] = deployment.upstream_model
    if stream:
        payload["stream"] = True
        options = dict(payload.get("stream_options") or {})
        options["include_usage"] = True
        payload["stream_options"] = options
    else:
        payload.pop("stream", None)
        payload.pop("stream_options", None)
    return payload


def parse_usage(data: JSON | None) -> Usage | None:
    """OpenAI ``usage`` → ``Usage`` (None when absent or malformed)."""
    if not isinstance(data, dict):
        return None
    prompt = data.get("prompt_tokens")
    completion = data.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = data.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if not isinstance(cached, int):
        cached = data.get("prompt_cache_hit_tokens")  # DeepSeek's name for the same count
    written = data.get("cache_creation_input_tokens")  # an Anthropic upstream translated to OpenAI shape
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_prompt_tokens=_count(cached),
        cache_write_tokens=_count(written),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _first_choice(data: object) -> tuple[str, str | None]:
    """The text and finish reason of an answer's first choice ('' and None when absent)."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
        return "", None
    message = choices[0].get("message") or {}
    # ``text``: a legacy text completion (``/v1/completions``) has no message.
    content = message.get("content", choices[0].get("text")) if isinstance(message, dict) else None
    return (content if isinstance(content, str) else ""), choices[0].get("finish_reason")


def read_answer(raw: bytes) -> tuple[str, str | None]:
    """The first choice's text and finish reason of a whole answer, parsed on demand (never raises)."""
    try:
        return _first_choice(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return "", None


# Below this size orjson parses a whole answer in no more CPU than reading its tail in Python costs
# (measured with OpenAI's nested token details: ~2.6 against ~3.3 µs at 200 bytes, about even at
# 4 KB; at 64 KB ~35 against ~6 µs).
TAIL_READ_BYTES = 4096


def parse_chat_response(raw: bytes) -> Completion:
    """A whole answer: usage read from its tail, the rest parsed only when asked for (``Completion.unread``).

    Answers under ``TAIL_READ_BYTES``, and those whose tail holds no readable top-level ``usage``,
    are parsed whole (and must be JSON).
    """
    usage = parse_usage(trailing_usage(raw)) if len(raw) >= TAIL_READ_BYTES else None
    if usage is not None:
        return Completion.unread(raw, usage, read_answer)
    data = orjson.loads(raw)
    text, finish = _first_choice(data)
    return Completion(body=raw, usage=parse_usage(data.get("usage")), text=text, finish_reason=finish)


def _nothing_to_read(payload: bytes) -> bool:
    """Whether a chunk's every ``usage`` and ``finish_reason`` is null (compact JSON, as providers send it).

    Inside a JSON string every quote is escaped, so these byte patterns only match the JSON's own keys;
    any other spelling (``"usage": null``) is simply read.
    """
    return (
        payload[:1] == b"{"
        and payload[-1:] == b"}"
        and payload.count(b'"finish_reason"') == payload.count(b'"finish_reason":null')
        and payload.count(b'"usage"') == payload.count(b'"usage":null')
    )


def plain_run(block: bytes) -> bool:
    """Whether ``block`` holds only whole ``data: {…}`` events, each one line and a blank one, none to read.

    "None to read": every ``usage`` and ``finish_reason`` in it is null (compact JSON, as providers
    send it). Counted over the whole block, with no step per event: the separators ``}\n\ndata: {``
    plus the final ``}\n\n`` must account for every newline, so each event is a single line (JSON
    strings hold no raw newline), and inside a JSON string every quote is escaped, so the key
    patterns only match the JSON's own keys. Anything else (``[DONE]``, comments, ``event:`` lines,
    ``\r\n``, ``data:`` without a space, an event split across reads) is for the caller to read.
    """
    return (
        block.startswith(b"data: {")
        and block.endswith(b"}\n\n")
        and block.count(b"\n") == 2 * (block.count(b"}\n\ndata: {") + 1)
        and block.count(b'"finish_reason"') == block.count(b'"finish_reason":null')
        and block.count(b'"usage"') == block.count(b'"usage":null')
    )


def parse_stream_line(line: bytes) -> StreamChunk | None:
    """One SSE line → a chunk to forward; None for blank/comment lines and ``[DONE]``.

    Most events carry only a piece of text: they are relayed unread (``StreamChunk.unread``;
    ``chunk_text`` reads one when a feature needs it). Those with usage or a finish reason are read.
    """
    if not line.startswith(b"data:"):
        return None
    payload = line[5:].strip()
    if not payload or payload == b"[DONE]":
        return None
    if _nothing_to_read(payload):
        return StreamChunk(data=payload, unread=True)
    data = orjson.loads(payload)
    chunk = StreamChunk(data=payload, usage=parse_usage(data.get("usage")), text=delta_text(data))
    choices = data.get("choices")
    if isinstance(choices, list) and choices:
        chunk.finish_reason = choices[0].get("finish_reason")
    elif chunk.usage is not None:
        chunk.usage_only = True
    return chunk


class OpenAIAdapter:
    kind: ClassVar[str] = "openai"

    def _url(self, deployment: Deployment) -> str:
        return deployment.provider.base_url.rstrip("/") + "/chat/completions"

    def _headers(self, provider: ProviderConfig) -> dict[str, str]:
        return build_headers(provider)

    async def complete(self, deployment: Deployment, body: JSON) -> Completion:
        provider = deployment.provider
        resp = await http.post_json(
            provider, self._url(deployment), build_chat_request(deployment, body, stream=False), self._headers(provider)
        )
        try:
            return parse_chat_response(resp.body)
        except (orjson.JSONDecodeError, AttributeError):
            raise errors.upstream_status(provider.name, 502, "malformed JSON answer") from None

    async def stream(self, deployment: Deployment, body: JSON) -> AsyncIterator[StreamChunk]:
        """The upstream's events as chunks: the events of one network read with nothing to read in them
        as one run (``StreamChunk.sse``, relayed as they came), any other read line by line."""
        provider = deployment.provider
        blocks = http.stream_line_blocks(
            provider, self._url(deployment), build_chat_request(deployment, body, stream=True), self._headers(provider)
        )
        finished = False
        try:
            async for block in blocks:
                if plain_run(block):
                    yield StreamChunk(data=None, sse=block, unread=True)
                    continue
                chunks: list[StreamChunk] = []
                for line in block.split(b"\n"):
                    if line.startswith(b"data: [DONE]"):
                        finished = True
                        continue
                    try:
                        chunk = parse_stream_line(line)
                    except (orjson.JSONDecodeError, AttributeError):
                        raise errors.upstream_status(provider.name, 502, "malformed stream chunk") from None
                    if chunk is not None:
                        chunks.append(chunk)
                for chunk in chunks[:-1]:
                    chunk.more = True
                for chunk in chunks:
                    yield chunk
        finally:
            await blocks.aclose()
        if not finished:
            # A clean close without [DONE] still lost the end of the answer.
            raise errors.upstream_dropped(provider.name)


class OpenAITextAdapter(OpenAIAdapter):
    """Legacy ``/v1/completions`` (also fill-in-the-middle ``suffix``): the same pass-through.

    Bodies, streams (usage always asked for, the usage-only chunk dropped by
    the caller unless the client wanted it) and answers are handled exactly as
    for chat; only the path differs.
    """

    accepts_token_input: ClassVar[bool] = True

    def _url(self, deployment: Deployment) -> str:
        return deployment.provider.base_url.rstrip("/") + "/completions"

    async def complete_text(self, deployment: Deployment, body: JSON) -> Completion:
        """A non-streaming ``{base_url}/completions`` call, answered byte for byte."""
        return await self.complete(deployment, body)

    def stream_text(self, deployment: Deployment, body: JSON) -> AsyncIterator[StreamChunk]:
        """A streaming ``{base_url}/completions`` call, its SSE data lines forwarded as they come."""
        return self.stream(deployment, body)


def parse_embedding_usage(data: object) -> Usage | None:
    """OpenAI embeddings ``usage`` (``prompt_tokens`` only) → Usage (None when absent or malformed)."""
    prompt = data.get("prompt_tokens") if isinstance(data, dict) else None
    if not isinstance(prompt, int) or isinstance(prompt, bool):
        return None
    return Usage(prompt_tokens=prompt)


MAX_USAGE_OBJECTS = 8  # objects nested in ``usage`` (token details) before the answer is parsed whole instead


def trailing_usage(raw: bytes) -> JSON | None:
    """The top-level ``usage`` object of an answer, read from its tail without parsing the rest.

    OpenAI-compatible servers put ``usage`` at or near the end. Inside a JSON string every quote is
    escaped, so the last ``"usage"`` followed by ``:`` and an object is a key; its object ends at the
    first ``}`` that balances its braces. It is the top-level one when what follows it only closes
    the answer, opening nothing (``,"system_fingerprint":"fp_1"}``: no ``{`` or ``[``, one ``}``, at
    the end). None when the answer does not look like that: the caller then parses it whole.
    Byte searches and one small parse, no exception on the common path: cheaper than parsing the
    whole answer once it holds more than a few KB of text.
    """
    if raw[:1] != b"{":
        return None
    at = raw.rfind(b'"usage"')
    if at < 0:
        return None
    rest = raw[at + 7 :].lstrip()  # 7: len('"usage"')
    if rest[:1] != b":":
        return None
    rest = rest[1:].lstrip()
    if rest[:1] != b"{":
        return None
    end = rest.find(b"}")
    for _ in range(MAX_USAGE_OBJECTS):
        if end < 0 or rest.count(b"{", 0, end) == rest.count(b"}", 0, end + 1):
            break
        end = rest.find(b"}", end + 1)
    else:
        return None
    after = rest[end + 1 :].rstrip()
    if end < 0 or after[-1:] != b"}" or after.count(b"}") != 1 or b"{" in after or b"[" in after:
        return None
    try:
        usage = orjson.loads(rest[: end + 1])
    except orjson.JSONDecodeError:  # braces inside a string in ``usage``: not read from the tail
        return None
    return usage if isinstance(usage, dict) else None


def parse_embeddings_response(raw: bytes) -> Usage | None:
    """The usage of an upstream embeddings answer; raises ``ValueError`` when it is not a JSON object."""
    usage = trailing_usage(raw)
    if usage is not None:
        return parse_embedding_usage(usage)
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return parse_embedding_usage(data.get("usage"))


class OpenAIEmbeddingsAdapter:
    """``/v1/embeddings`` pass-through: the body goes to ``{base_url}/embeddings``, the answer comes back as is."""

    kind: ClassVar[str] = "openai"
    accepts_token_input: ClassVar[bool] = True

    async def embed(self, deployment: Deployment, body: JSON) -> EmbeddingResult:
        """One upstream embeddings call (token arrays, ``dimensions``, ``encoding_format`` passed through)."""
        provider = deployment.provider
        url = provider.base_url.rstrip("/") + "/embeddings"
        payload = {**body, "model": deployment.upstream_model}
        resp = await http.post_json(provider, url, payload, build_headers(provider))
        try:
            usage = parse_embeddings_response(resp.body)
        except ValueError:  # orjson.JSONDecodeError is a ValueError
            raise errors.upstream_status(provider.name, 502, "malformed JSON answer") from None
        return EmbeddingResult(body=resp.body, usage=usage)
