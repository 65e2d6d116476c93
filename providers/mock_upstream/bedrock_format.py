"""AWS Bedrock Converse / ConverseStream wire format (pure): bodies, event-stream frames, SigV4 check.

The mock checks SigV4 signatures for real: it re-signs the request it received with
botocore's signer, the secret ``MOCK_AWS_SECRET`` and the signer's own timestamp, and
compares. An access key id starting with ``EXPIRED`` is refused the way AWS refuses an
expired session token.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from providers.mock_upstream.replies import BadRequest, Conversation, Reply, StreamPlan, positive_int_or_none

JSON = dict[str, Any]
EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
MOCK_AWS_SECRET = "mock-aws-secret"
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class AuthError(Exception):
    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def error_body(message: str) -> JSON:
    return {"message": message}


def verify_signature(
    *, method: str, url: str, headers: Mapping[str, str], body: bytes, secret: str = MOCK_AWS_SECRET
) -> None:
    """Raise ``AuthError`` unless ``Authorization`` is a valid SigV4 signature of this request."""
    match = _AUTH_RE.fullmatch(headers.get("Authorization", ""))
    if match is None:
        raise AuthError(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
    if match["key"].startswith("EXPIRED"):
        raise AuthError(403, "The security token included in the request is expired", "ExpiredTokenException")
    signed = match["signed"].split(";")
    lowered = {k.lower(): v for k, v in headers.items()}
    request = AWSRequest(method=method, url=url, data=body, headers={n: lowered[n] for n in signed if n in lowered})
    request.context["timestamp"] = lowered.get("x-amz-date", "")
    signer = SigV4Auth(
        Credentials(match["key"], secret, lowered.get("x-amz-security-token")), match["service"], match["region"]
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != match["signature"]:
        raise AuthError(
            403,
            "The request signature we calculated does not match the signature you provided.",
            "InvalidSignatureException",
        )


def _block_texts(block: object) -> list[str]:
    if not isinstance(block, dict):
        return []
    if isinstance(block.get("text"), str):
        return [block["text"]]
    result = block.get("toolResult")
    if isinstance(result, dict):
        return [t for item in result.get("content") or [] for t in _block_texts(item)]
    return []


def parse_converse(body: JSON) -> tuple[Conversation, int | None]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required")
    conversation = Conversation()
    for block in body.get("system") or []:
        conversation.texts.extend(_block_texts(block))
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest("messages: each message needs role 'user' or 'assistant'")
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise BadRequest("messages.content: must not be empty")
        for block in content:
            conversation.texts.extend(_block_texts(block))
        texts = [b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
        if message["role"] == "user" and texts:
            conversation.last_user_text = "\n".join(texts)
    last = messages[-1]
    results = [b["toolResult"] for b in last["content"] if isinstance(b, dict) and "toolResult" in b]
    if last["role"] == "user" and results:
        conversation.tool_result = "\n".join(_block_texts({"toolResult": results[-1]}))
    tool_config = body.get("toolConfig") or {}
    for tool in tool_config.get("tools") or []:
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            conversation.tool_names.append(spec["name"])
    choice = tool_config.get("toolChoice") or {}
    if "any" in choice and conversation.tool_names:
        conversation.forced_tool = conversation.tool_names[0]
    elif isinstance(choice.get("tool"), dict):
        conversation.forced_tool = choice["tool"].get("name")
    config = body.get("inferenceConfig") or {}
    return conversation, positive_int_or_none(config.get("maxTokens"), "inferenceConfig.maxTokens")


def _usage(reply: Reply) -> JSON:
    return {
        "inputTokens": reply.prompt_tokens,
        "outputTokens": reply.completion_tokens,
        "totalTokens": reply.total_tokens,
    }


def converse_body(reply: Reply, *, with_usage: bool = True) -> JSON:
    if reply.tool_call is not None:
        call = reply.tool_call
        content: list[JSON] = [{"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.arguments}}]
    else:
        content = [{"text": reply.text}]
    body: JSON = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _STOP[reply.finish],
        "metrics": {"latencyMs": 1},
    }
    if with_usage:
        body["usage"] = _usage(reply)
    return body


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (lengths + CRC), headers, payload, message CRC."""
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def event(name: str, payload: JSON) -> bytes:
    headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, orjson.dumps(payload))


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, orjson.dumps({"message": message}))


def converse_stream_plan(reply: Reply, *, with_usage: bool = True) -> StreamPlan:
    plan = StreamPlan(content_type=EVENTSTREAM_CONTENT_TYPE)
    plan.preamble = [event("messageStart", {"role": "assistant"})]
    if reply.tool_call is not None:
        call = reply.tool_call
        plan.preamble.append(
            event(
                "contentBlockStart",
                {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": call.id, "name": call.name}}},
            )
        )
        plan.content = [
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}})
            for piece in call.pieces
        ]
    else:
        plan.content = [
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}) for piece in reply.pieces
        ]
    plan.trailer = [
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": _STOP[reply.finish]}),
    ]
    if with_usage:
        plan.trailer.append(event("metadata", {"usage": _usage(reply), "metrics": {"latencyMs": 1}}))
    return plan
