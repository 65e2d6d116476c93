"""Ollama's ``/api/generate`` and ``/api/embed`` behind OpenAI's text completion and embeddings APIs.

Text completions (also fill-in-the-middle: ``prompt`` + ``suffix``) go to
``POST {base_url}/api/generate`` with ``raw: false`` so the model's template
applies (FIM needs it); sampling parameters map as for chat
(``max_tokens`` → ``options.num_predict``). NDJSON lines become OpenAI
``text_completion`` chunks, then one usage-only chunk. Embeddings go to
``POST {base_url}/api/embed`` with ``input`` (and ``dimensions``) and come
back as OpenAI's ``list`` of ``embedding`` objects; ``encoding_format:
base64`` packs each vector as little-endian float32, as OpenAI does.
Ollama takes neither token arrays nor batches of prompts: both are a 400.
"""

from __future__ import annotations

import base64
import math
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import ClassVar

import orjson

from gateway_platform.errors import invalid_request
from providers import errors
from providers.adapters.base import JSON, Completion, Deployment, EmbeddingResult, StreamChunk, Usage
from providers.adapters.chat_shapes import usage_json
from providers.adapters.ollama import (
    DEFAULT_KEEP_ALIVE,
    build_options,
    finish_reason,
    parse_usage,
    post_translated,
    stream_translated,
)

TEXT_COMPLETION = "text_completion"

# --------------------------------------------------------------------------- text completions


def new_text_completion_id() -> str:
    """An OpenAI-style legacy completion id (``cmpl-…``)."""
    return "cmpl-" + uuid.uuid4().hex[:24]


def single_prompt(prompt: object) -> str:
    """The one text prompt of a request (a string or a one-string list); 400 otherwise."""
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise invalid_request(
            "This provider takes exactly one text prompt per request (no batches or token arrays).", param="prompt"
        )
    return prompt


def build_generate_request(deployment: Deployment, body: JSON, *, stream: bool) -> JSON:
    """The ``/api/generate`` body for an OpenAI ``/v1/completions`` body."""
    for name in ("n", "best_of"):
        if body.get(name) not in (None, 1):
            raise invalid_request(f"'{name}' > 1 is not supported for this provider.", param=name)
    if body.get("echo"):
        raise invalid_request("'echo' is not supported for this provider.", param="echo")
    payload: JSON = {
        "model": deployment.upstream_model,
        "prompt": single_prompt(body.get("prompt")),
        "stream": stream,
        "raw": False,
        "keep_alive": body.get("keep_alive") or DEFAULT_KEEP_ALIVE,
    }
    suffix = body.get("suffix")
    if isinstance(suffix, str) and suffix:
        payload["suffix"] = suffix
    options = build_options(body)
    if options:
        payload["options"] = options
    return payload


def text_completion_json(
    *, completion_id: str, created: int, model: str, text: str, finish: str | None, usage: Usage | None = None
) -> JSON:
    """An OpenAI ``text_completion`` object (a whole answer, or a stream chunk)."""
    body: JSON = {
        "id": completion_id,
        "object": TEXT_COMPLETION,
        "created": created,
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage_json(usage, details=False)
    return body


def parse_generate_response(raw: bytes, *, model: str, created: int, completion_id: str) -> Completion:
    """A non-streamed ``/api/generate`` answer → OpenAI ``text_completion``."""
    data = orjson.loads(raw)
    text = data.get("response") or ""
    if not isinstance(text, str):
        raise TypeError("response is not a string")
    finish = finish_reason(data.get("done_reason"), False)
    usage = parse_usage(data)
    body = text_completion_json(
        completion_id=completion_id, created=created, model=model, text=text, finish=finish, usage=usage
    )
    return Completion(body=orjson.dumps(body), usage=usage, text=text, finish_reason=finish)


class TextStreamTranslator:
    """``/api/generate`` NDJSON objects → OpenAI ``text_completion`` chunks (pure state machine)."""

    def __init__(self, *, provider: str, model: str, created: int, completion_id: str) -> None:
        self.provider = provider
        self.model = model
        self.created = created
        self.id = completion_id
        self.finished = False
        self.usage: Usage | None = None

    def _chunk(self, text: str, finish: str | None) -> StreamChunk:
        payload = text_completion_json(
            completion_id=self.id, created=self.created, model=self.model, text=text, finish=finish
        )
        return StreamChunk(data=orjson.dumps(payload), text=text, finish_reason=finish)

    def feed(self, data: JSON) -> list[StreamChunk]:
        """One NDJSON object → chunks to forward."""
        if "error" in data:
            raise errors.upstream_status(self.provider, 502, str(data["error"]))
        chunks: list[StreamChunk] = []
        text = data.get("response") or ""
        if not isinstance(text, str):
            raise TypeError("response is not a string")
        if text:
            chunks.append(self._chunk(text, None))
        if data.get("done") is True:
            self.finished = True
            self.usage = parse_usage(data)
            chunks.append(self._chunk("", finish_reason(data.get("done_reason"), False)))
        return chunks

    def usage_chunk(self) -> StreamChunk | None:
        """The final usage-only chunk (None when Ollama reported no counts)."""
        if self.usage is None:
            return None
        payload = {
            "id": self.id,
            "object": TEXT_COMPLETION,
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_json(self.usage, details=False),
        }
        return StreamChunk(data=orjson.dumps(payload), usage=self.usage, usage_only=True)


# --------------------------------------------------------------------------- embeddings


def embedding_texts(value: object) -> list[str]:
    """An embeddings ``input`` as a list of strings; token arrays are a 400 here."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    raise invalid_request(
        "This provider only embeds text: send 'input' as a string or an array of strings, not token arrays.",
        param="input",
    )


def build_embed_request(deployment: Deployment, body: JSON) -> JSON:
    """The ``/api/embed`` body for an OpenAI embeddings body (``user`` is dropped)."""
    payload: JSON = {
        "model": deployment.upstream_model,
        "input": embedding_texts(body.get("input")),
        "keep_alive": body.get("keep_alive") or DEFAULT_KEEP_ALIVE,
    }
    if body.get("dimensions") is not None:
        payload["dimensions"] = body["dimensions"]
    return payload


def fit_dimensions(vector: list[float], dimensions: int | None) -> list[float]:
    """Shorten ``vector`` to ``dimensions`` and re-normalise it (OpenAI's ``dimensions``).

    Servers that ignore ``dimensions`` still give the client the size it asked for.
    """
    if dimensions is None or len(vector) <= dimensions:
        return vector
    head = vector[:dimensions]
    norm = math.sqrt(sum(v * v for v in head)) or 1.0
    return [v / norm for v in head]


def pack_base64(vector: list[float]) -> str:
    """OpenAI's ``encoding_format: base64``: the vector as little-endian float32, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def parse_embed_response(raw: bytes, *, model: str, encoding_format: str, dimensions: int | None) -> EmbeddingResult:
    """An ``/api/embed`` answer → OpenAI's embeddings ``list``."""
    data = orjson.loads(raw)
    vectors = data.get("embeddings")
    if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
        raise TypeError("embeddings is not a list of vectors")
    items: list[JSON] = []
    for index, vector in enumerate(vectors):
        fitted = fit_dimensions(vector, dimensions)
        embedding: object = pack_base64(fitted) if encoding_format == "base64" else fitted
        items.append({"object": "embedding", "index": index, "embedding": embedding})
    prompt = data.get("prompt_eval_count")
    usage = Usage(prompt_tokens=prompt) if isinstance(prompt, int) else None
    body: JSON = {"object": "list", "data": items, "model": model}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}
    return EmbeddingResult(body=orjson.dumps(body), usage=usage)


# --------------------------------------------------------------------------- I/O


def _url(deployment: Deployment, path: str) -> str:
    return deployment.provider.base_url.rstrip("/") + path


class OllamaTextAdapter:
    """``/v1/completions`` on Ollama's ``/api/generate``."""

    kind: ClassVar[str] = "ollama"
    accepts_token_input: ClassVar[bool] = False

    async def complete_text(self, deployment: Deployment, body: JSON) -> Completion:
        """One non-streaming ``/api/generate`` call, answered as an OpenAI ``text_completion``."""
        payload = build_generate_request(deployment, body, stream=False)
        return await post_translated(
            deployment.provider,
            _url(deployment, "/api/generate"),
            payload,
            lambda raw: parse_generate_response(
                raw, model=deployment.name, created=int(time.time()), completion_id=new_text_completion_id()
            ),
        )

    async def stream_text(self, deployment: Deployment, body: JSON) -> AsyncIterator[StreamChunk]:
        """A streaming ``/api/generate`` call as OpenAI ``text_completion`` chunks, then a usage-only chunk."""
        provider = deployment.provider
        payload = build_generate_request(deployment, body, stream=True)
        translator = TextStreamTranslator(
            provider=provider.name,
            model=deployment.name,
            created=int(time.time()),
            completion_id=new_text_completion_id(),
        )
        chunks = stream_translated(provider, _url(deployment, "/api/generate"), payload, translator)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()


class OllamaEmbeddingsAdapter:
    """``/v1/embeddings`` on Ollama's ``/api/embed``."""

    kind: ClassVar[str] = "ollama"
    accepts_token_input: ClassVar[bool] = False

    async def embed(self, deployment: Deployment, body: JSON) -> EmbeddingResult:
        """One ``/api/embed`` call, answered in OpenAI's shape (floats or base64)."""
        payload = build_embed_request(deployment, body)
        encoding_format = body.get("encoding_format") or "float"
        dimensions = body.get("dimensions")
        return await post_translated(
            deployment.provider,
            _url(deployment, "/api/embed"),
            payload,
            lambda raw: parse_embed_response(
                raw, model=deployment.name, encoding_format=encoding_format, dimensions=dimensions
            ),
        )
