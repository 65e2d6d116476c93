"""Replaying a cached answer as SSE, and assembling a sent stream into an answer (pure)."""

from __future__ import annotations

import orjson
import pytest

from serving.replay import HELD_BYTES, StreamRecorder, replay_events, split_text

ANSWER = {
    "model": "mock-small-1",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "word " * 40,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "grep", "arguments": "{}"}}],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 40, "total_tokens": 43},
}


def sse(payloads: list[bytes]) -> bytes:
    return b"".join(b"data: " + p + b"\n\n" for p in payloads) + b": x-gateway-cost-usd=0\n\ndata: [DONE]\n\n"


def test_split_text_keeps_every_character() -> None:
    text = "a fairly long sentence " * 9
    pieces = split_text(text, 20)
    assert "".join(pieces) == text and all(len(p) <= 20 for p in pieces)


def test_a_replayed_answer_records_back_to_itself() -> None:
    events = list(replay_events(ANSWER, chunk_id="chatcmpl-x", include_usage=True))
    assert orjson.loads(events[-1])["choices"] == []
    recorder = StreamRecorder()
    body = sse(events)
    for start in range(0, len(body), 7):  # events split across body pieces
        recorder.feed(body[start : start + 7])
    assert recorder.completion() == {"object": "chat.completion", **ANSWER}


def test_an_unfinished_or_failed_stream_is_not_an_answer() -> None:
    events = list(replay_events(ANSWER, chunk_id="x", include_usage=False))
    unfinished = StreamRecorder()
    unfinished.feed(b"".join(b"data: " + e + b"\n\n" for e in events[:-1]))
    assert unfinished.completion() is None
    failed = StreamRecorder()
    failed.feed(sse([*events[:2], b'{"error": {"message": "boom"}}']))
    assert failed.completion() is None


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b"", b"  ", b'{"a": 1}, {"b": 2}', b"[1, 2]", b'"text"', b"1,2"],
    ids=["malformed", "empty", "blank", "two-objects", "array", "string", "two-numbers"],
)
def test_a_payload_that_is_not_one_json_object_fails_the_answer(payload: bytes) -> None:
    events = list(replay_events(ANSWER, chunk_id="x", include_usage=True))
    recorder = StreamRecorder()
    recorder.feed(sse([*events[:2], payload, *events[2:]]))
    assert recorder.completion() is None


def test_comments_other_fields_and_crlf_line_ends_are_read_as_a_client_reads_them() -> None:
    events = list(replay_events(ANSWER, chunk_id="x", include_usage=True))
    body = b"".join(b": keep-alive\n\nevent: chunk\ndata: " + e + b"\r\n\n" for e in events)
    recorder = StreamRecorder()
    recorder.feed(body + b"data: [DONE]\r\n\n")
    assert recorder.completion() == {"object": "chat.completion", **ANSWER}


def test_a_stream_longer_than_the_recorder_holds_is_read_as_it_goes() -> None:
    long_answer = {**ANSWER, "choices": [{**ANSWER["choices"][0]}]}
    long_answer["choices"][0]["message"] = {**ANSWER["choices"][0]["message"], "content": "token " * 100_000}
    body = sse(list(replay_events(long_answer, chunk_id="x", include_usage=True)))
    assert len(body) > 3 * HELD_BYTES
    recorder = StreamRecorder()
    for start in range(0, len(body), 4093):  # pieces that cut events and lines anywhere
        recorder.feed(body[start : start + 4093])
        assert recorder._held <= HELD_BYTES + 4093  # never more than one step of bytes held
    assert recorder.completion() == {"object": "chat.completion", **long_answer}
