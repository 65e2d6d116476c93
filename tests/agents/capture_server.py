"""A loopback capture server: records what agent CLIs send, answers minimally.

Used to (re)capture the request samples under ``tests/agents/fixtures/``::

    python tests/agents/capture_server.py PORT OUT_DIR

Every request is written to ``OUT_DIR/NNN-<path>.json`` (method, path, query,
headers with credentials masked, body). Answers are the smallest valid ones
for the Responses API, Anthropic Messages and chat completions (streamed when
asked) so the agent gets past its first call.
"""

from __future__ import annotations

import itertools
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SECRET_HEADERS = {"authorization", "x-api-key", "cookie"}
_counter = itertools.count(1)


def _sse(events: list[tuple[str | None, dict[str, Any]]]) -> bytes:
    out = []
    for name, payload in events:
        prefix = f"event: {name}\n" if name else ""
        out.append(f"{prefix}data: {json.dumps(payload)}\n\n")
    return "".join(out).encode()


def responses_answer(stream: bool) -> tuple[str, bytes]:
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "captured", "annotations": []}],
    }
    response = {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": "m",
        "output": [message],
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
    }
    if not stream:
        return "application/json", json.dumps(response).encode()
    events = [
        ("response.created", {"type": "response.created", "response": {**response, "status": "in_progress"}}),
        ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": message}),
        ("response.completed", {"type": "response.completed", "response": response}),
    ]
    return "text/event-stream", _sse(events)


def messages_answer(stream: bool) -> tuple[str, bytes]:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "captured"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    if not stream:
        return "application/json", json.dumps(message).encode()
    events = [
        ("message_start", {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "captured"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "text/event-stream", _sse(events)


def chat_answer(stream: bool) -> tuple[str, bytes]:
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    if not stream:
        body = {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "captured"}, "finish_reason": "stop"}],
            "usage": usage,
        }
        return "application/json", json.dumps(body).encode()
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "captured"}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": usage},
    ]
    return "text/event-stream", _sse([(None, c) for c in chunks]) + b"data: [DONE]\n\n"


class CaptureHandler(BaseHTTPRequestHandler):
    out_dir: Path

    def _record(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        parts = urlsplit(self.path)
        headers = {k.lower(): ("***" if k.lower() in SECRET_HEADERS else v) for k, v in self.headers.items()}
        record = {"method": self.command, "path": parts.path, "query": parts.query, "headers": headers, "body": body}
        name = f"{next(_counter):03d}-{parts.path.strip('/').replace('/', '_') or 'root'}.json"
        (self.out_dir / name).write_text(json.dumps(record, indent=1))
        return record

    def _answer(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        record = self._record()
        if record["path"].endswith("/models"):
            self._answer(200, "application/json", json.dumps({"object": "list", "data": []}).encode())
        else:
            self._answer(404, "application/json", b'{"error": {"message": "not captured"}}')

    def do_POST(self) -> None:
        record = self._record()
        body = record["body"] if isinstance(record["body"], dict) else {}
        stream = bool(body.get("stream"))
        path = record["path"]
        if path.endswith("/responses"):
            content_type, payload = responses_answer(stream)
        elif path.endswith("/messages"):
            content_type, payload = messages_answer(stream)
        elif path.endswith("/count_tokens"):
            content_type, payload = "application/json", b'{"input_tokens": 1}'
        elif path.endswith("/chat/completions"):
            content_type, payload = chat_answer(stream)
        else:
            self._answer(404, "application/json", b'{"error": {"message": "not captured"}}')
            return
        self._answer(200, content_type, payload)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("capture: " + (format % args) + "\n")


def main() -> None:
    port, out_dir = int(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    CaptureHandler.out_dir = out_dir
    ThreadingHTTPServer(("127.0.0.1", port), CaptureHandler).serve_forever()


if __name__ == "__main__":
    main()
