"""Pass-through streams read only for accounting (``translate=False``) account like the full translation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway_platform.errors import GatewayError
from providers.adapters.anthropic import AnthropicAdapter, StreamTranslator
from providers.adapters.base import NativeRequest, StreamChunk, chunk_text
from providers.adapters.openai_responses import EventTranslator, OpenAIResponsesAdapter
from tests.providers.test_passthrough_adapters import deployment


async def _both(adapter: object, target: object, request: NativeRequest) -> tuple[list[StreamChunk], ...]:
    runs = []
    for translate in (True, False):
        stream = adapter.stream_native(target, request, caching=False, translate=translate)  # type: ignore[attr-defined]
        runs.append([chunk async for chunk in stream])
    return tuple(runs)


def _accounted(chunks: list[StreamChunk]) -> tuple[list[bytes], str, object]:
    """What the relay takes from a stream: the events sent (by name: ids differ per call), text and usage."""
    usage = [c.usage for c in chunks if c.usage is not None]
    names = [c.raw.split(b"\n", 1)[0] for c in chunks if c.raw is not None]
    return names, "".join(chunk_text(c) for c in chunks), usage[-1:]


@pytest.mark.parametrize("prompt", ["hello there [[mock: words=12]]", "[[mock: tool=1]]", "[[mock: no_usage=1]]"])
async def test_an_anthropic_stream_accounts_the_same_untranslated(mock_url: str, prompt: str) -> None:
    target = replace(deployment(), provider=replace(deployment().provider, base_url=mock_url, api_key="k"))
    body = {"model": "x", "max_tokens": 50, "messages": [{"role": "user", "content": prompt}]}
    translated, untranslated = await _both(AnthropicAdapter(), target, NativeRequest("anthropic.messages", body))
    assert all(c.data is None for c in untranslated)  # no chat chunk built
    assert _accounted(untranslated) == _accounted(translated)


@pytest.mark.parametrize("prompt", ["hello there [[mock: words=12]]", "[[mock: tool=1]]"])
async def test_a_responses_stream_accounts_the_same_untranslated(mock_url: str, prompt: str) -> None:
    base = deployment("openai")
    target = replace(
        base, provider=replace(base.provider, base_url=f"{mock_url}/v1", api_key="k", supports_responses=True)
    )
    request = NativeRequest("openai.responses", {"model": "x", "input": prompt})
    translated, untranslated = await _both(OpenAIResponsesAdapter(), target, request)
    assert all(c.data is None for c in untranslated)
    assert _accounted(untranslated) == _accounted(translated)


def test_accounting_keeps_the_translators_end_and_errors() -> None:
    anthropic = StreamTranslator(provider="up", model="m", created=0)
    assert anthropic.account({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}}) == "hi"
    anthropic.account({"type": "message_stop"})
    assert anthropic.finished
    with pytest.raises(GatewayError):
        anthropic.account({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    responses = EventTranslator(provider="up", model="m")
    done = {"type": "response.completed", "response": {"usage": {"input_tokens": 5, "output_tokens": 2}}}
    text, usage = responses.account(done)
    assert text == "" and usage is not None and usage.completion_tokens == 2 and responses.finished
    with pytest.raises(GatewayError):
        responses.account({"type": "response.failed", "response": {"error": {}}})
