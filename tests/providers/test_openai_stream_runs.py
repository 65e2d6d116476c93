"""OpenAI streams relayed as runs: the events of one network read that need no reading, in one piece."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web

from gateway_platform.errors import GatewayError
from providers import http
from providers.adapters.base import StreamChunk, chunk_text, unpack
from providers.adapters.openai import OpenAIAdapter, plain_run
from tests.providers.test_text_adapters import make_deployment


def event(content: str, *, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return b"data: " + orjson.dumps({"id": "c", "choices": [choice], "usage": None}) + b"\n\n"


USAGE = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'


def test_a_block_of_plain_events_is_a_run() -> None:
    assert plain_run(event("a"))
    assert plain_run(event("a") + event('say "usage":1 and "finish_reason":"stop"') + event("c"))


@pytest.mark.parametrize(
    "block",
    [
        event("a") + event("", finish="stop"),  # a finish reason to read
        event("a") + USAGE,  # usage to read
        event("a") + b"data: [DONE]\n\n",
        b": keep-alive\n\n" + event("a"),  # a comment
        event("a").replace(b"\n", b"\r\n"),
        event("a").replace(b"data: ", b"data:"),
        event("a")[:-1],  # the event's blank line comes with the next read
        b'data: {"choices": [{"delta": {"content": "x"}, "finish_reason": null}]}\n\n',  # not compact: read
        b'event: x\ndata: {"a":1}\n\n',
        b'data: {"a":1}x\n\ndata: {"b":2}\n\n',  # a payload that is not one JSON object
        b"",
    ],
)
def test_anything_else_is_read_line_by_line(block: bytes) -> None:
    assert not plain_run(block)


def test_a_run_unpacks_into_its_events_and_reads_its_text() -> None:
    run = StreamChunk(data=None, sse=event("Hello") + event(", ") + event("world"), unread=True)
    events = unpack(run)
    assert [e.data for e in events] == [e[len(b"data: ") : -2] for e in (event("Hello"), event(", "), event("world"))]
    assert [e.more for e in events] == [True, True, False] and all(e.unread for e in events)
    assert chunk_text(run) == "Hello, world" and not run.unread
    single = StreamChunk(data=b"{}")
    assert unpack(single) == [single]


async def collect(base_url: str, prompt: str) -> list[StreamChunk]:
    body = {"model": "public", "messages": [{"role": "user", "content": prompt}], "stream": True}
    return [chunk async for chunk in OpenAIAdapter().stream(make_deployment(base_url, "openai"), body)]


# Unpaced, the in-process mock's whole answer arrives in one read with its finish: read line by line.
@pytest.mark.parametrize(("pacing", "with_runs"), [("", False), (" tps=1000", True)])
async def test_the_mock_stream_comes_as_runs_and_read_events(mock_url: str, pacing: str, with_runs: bool) -> None:
    prompt = f"[[mock: reply=ok words=30{pacing}]]"
    chunks = await collect(mock_url, prompt)
    runs = [c for c in chunks if c.sse is not None]
    assert bool(runs) is with_runs and all(c.unread and c.data is None for c in runs)
    events = [e for c in chunks for e in unpack(c)]
    whole = await OpenAIAdapter().complete(
        make_deployment(mock_url, "openai"), {"model": "public", "messages": [{"role": "user", "content": prompt}]}
    )
    assert "".join(chunk_text(e) for e in events) == whole.text
    assert [e.finish_reason for e in events if e.finish_reason] == ["stop"]
    assert events[-1].usage_only and events[-1].usage == whole.usage


async def _scripted(pieces: list[bytes]) -> tuple[web.AppRunner, str]:
    """A server that writes ``pieces`` as separate network writes."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0.02)  # its own read on the other side
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def test_events_split_across_reads_arrive_whole_and_in_order() -> None:
    pieces = [
        event("a") + event("b")[:9],  # an event cut inside its payload
        event("b")[9:-1],  # ... and before its blank line
        b"\n" + event("c"),
        event("d").replace(b"\n", b"\r\n") + event("", finish="stop"),
        USAGE + b"data: [DONE]\n\n",
    ]
    runner, url = await _scripted(pieces)
    try:
        chunks = await collect(url, "hi")
    finally:
        await http.close_sessions()
        await runner.cleanup()
    events = [e for c in chunks for e in unpack(c)]
    assert "".join(chunk_text(e) for e in events) == "abcd"
    assert chunks[0].sse == event("a")  # the whole events of the first read went as one run
    assert [e.finish_reason for e in events if e.finish_reason] == ["stop"]
    assert events[-1].usage is not None and events[-1].usage.completion_tokens == 2


async def test_a_stream_without_done_is_dropped() -> None:
    runner, url = await _scripted([event("a"), event("b")])
    try:
        with pytest.raises(GatewayError) as failed:
            await collect(url, "hi")
    finally:
        await http.close_sessions()
        await runner.cleanup()
    assert failed.value.code == "upstream_disconnected"
