"""A streamed answer's read timeout (``providers.http.SilenceWatch``), over real HTTP against the mock.

The provider's ``read_timeout`` is the longest silence allowed between bytes of an answer. For
streams one timer per answer enforces it (not aiohttp's, re-armed on every read): a stream that
goes silent mid-way is cut with ``upstream_timeout``, and a reader held up by its own client is
not mistaken for a silent upstream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from gateway_platform.errors import GatewayError
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import ChatAdapter, Deployment, chunk_text, unpack
from providers.adapters.openai import OpenAIAdapter
from tests.providers.test_adapters_against_mock import make_deployment as anthropic_deployment
from tests.providers.test_text_adapters import make_deployment as openai_deployment

READ_TIMEOUT = 0.4
GAP = 2.5  # seconds between the mock's events when it is paced at 0.4 tokens a second


def with_read_timeout(deployment: Deployment, seconds: float) -> Deployment:
    return dataclasses.replace(deployment, provider=dataclasses.replace(deployment.provider, read_timeout=seconds))


def adapters(mock_url: str) -> dict[str, tuple[ChatAdapter, Deployment]]:
    return {
        "openai": (OpenAIAdapter(), openai_deployment(mock_url, "openai")),  # read as blocks
        "anthropic": (AnthropicAdapter(), anthropic_deployment(mock_url, "anthropic")),  # read line by line
    }


def body(prompt: str) -> dict[str, Any]:
    return {"model": "public", "messages": [{"role": "user", "content": prompt}], "stream": True}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_that_goes_silent_is_cut_after_the_read_timeout(mock_url: str, kind: str) -> None:
    adapter, deployment = adapters(mock_url)[kind]
    deployment = with_read_timeout(deployment, READ_TIMEOUT)
    received = 0
    last = time.monotonic()
    with pytest.raises(GatewayError) as raised:
        async for _ in adapter.stream(deployment, body(f"slow [[mock: words=3 tps={1 / GAP}]]")):
            received += 1
            last = time.monotonic()
    silence = time.monotonic() - last
    assert raised.value.code == "upstream_timeout"
    assert received >= 1  # what came before the silence was relayed
    # Not cut before the read timeout, and long before the mock's next event would have come.
    assert READ_TIMEOUT <= silence < GAP - 0.5


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_reader_held_up_longer_than_the_read_timeout_still_reads_the_whole_answer(
    mock_url: str, kind: str
) -> None:
    # 3,000 words unpaced fill aiohttp's buffer and the socket's: the transport pauses and no byte
    # arrives while the reader sleeps — the upstream is not silent, the reader is not reading.
    adapter, deployment = adapters(mock_url)[kind]
    deployment = with_read_timeout(deployment, READ_TIMEOUT)
    text: list[str] = []
    chunks = adapter.stream(deployment, body("long [[mock: words=3000]]"))
    text.extend(chunk_text(event) for event in unpack(await anext(chunks)))
    await asyncio.sleep(3 * READ_TIMEOUT)
    async for chunk in chunks:
        text.extend(chunk_text(event) for event in unpack(chunk))
    assert len("".join(text).split()) >= 3000
