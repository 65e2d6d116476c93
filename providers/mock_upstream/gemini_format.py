"""Google Gemini ``generateContent`` / ``streamGenerateContent`` wire format (pure)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from providers.mock_upstream.replies import BadRequest, Conversation, Reply, StreamPlan, positive_int_or_none

JSON = dict[str, Any]
SSE_CONTENT_TYPE = "text/event-stream"
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def error_body(status: int, message: str) -> JSON:
    return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}


def _part_texts(part: object) -> list[str]:
    if not isinstance(part, dict):
        return []
    if isinstance(part.get("text"), str):
        return [part["text"]]
    response = part.get("functionResponse")
    if isinstance(response, dict):
        return [orjson.dumps(response.get("response")).decode()]
    return []


def _result_text(response: JSON) -> str:
    value = response.get("response")
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return orjson.dumps(value).decode()


def parse_generate(body: JSON) -> tuple[Conversation, int | None]:
    """A ``generateContent`` request → (conversation, ``maxOutputTokens``)."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("contents: at least one content is required")
    conversation = Conversation()
    system = body.get("systemInstruction")
    for part in system.get("parts", []) if isinstance(system, dict) else []:
        conversation.texts.extend(_part_texts(part))
    for content in contents:
        if not isinstance(content, dict) or content.get("role", "user") not in ("user", "model"):
            raise BadRequest("contents: each content needs role 'user' or 'model'")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise BadRequest("contents.parts: must not be empty")
        for part in parts:
            conversation.texts.extend(_part_texts(part))
        texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if content.get("role", "user") == "user" and texts:
            conversation.last_user_text = "\n".join(texts)
    last = contents[-1]
    results = [p["functionResponse"] for p in last.get("parts", []) if isinstance(p, dict) and "functionResponse" in p]
    if last.get("role", "user") == "user" and results:
        conversation.tool_result = _result_text(results[-1])
    for tool in body.get("tools") or []:
        for declaration in tool.get("functionDeclarations") or [] if isinstance(tool, dict) else []:
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                conversation.tool_names.append(declaration["name"])
    calling = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}) if isinstance(body, dict) else {}
    mode = calling.get("mode")
    if mode == "NONE":
        conversation.tools_disabled = True
    elif mode == "ANY":
        allowed = calling.get("allowedFunctionNames") or conversation.tool_names
        conversation.forced_tool = allowed[0] if allowed else None
    config = body.get("generationConfig") or {}
    max_tokens = positive_int_or_none(config.get("maxOutputTokens"), "generationConfig.maxOutputTokens")
    return conversation, max_tokens


def thought_signature(name: str, response_id: str) -> str:
    """The mock's signature on a function call: standard base64 (``+``, ``/``, ``=`` included), like Gemini's."""
    return base64.b64encode(f"mock-thought:{name}:{response_id}\xff".encode("latin-1")).decode()


def check_signatures(body: JSON, model: str) -> None:
    """Gemini 3 refuses a function call of an earlier turn that lost its thought signature (400).

    The first ``functionCall`` part of each ``model`` turn must carry a signature the mock issued, unchanged.
    Other models (2.5) accept a missing one, as Gemini does.
    """
    if not model.startswith("gemini-3"):
        return
    for index, content in enumerate(body.get("contents") or []):
        if not isinstance(content, dict) or content.get("role") != "model":
            continue
        calls = [p for p in content.get("parts") or [] if isinstance(p, dict) and "functionCall" in p]
        if not calls:
            continue
        signature = calls[0].get("thoughtSignature")
        if not isinstance(signature, str):
            raise BadRequest(
                f"Function call is missing a thought_signature in functionCall parts. Position {index}.",
                param=f"contents[{index}]",
            )
        try:
            text = base64.b64decode(signature, validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            text = ""
        name = calls[0]["functionCall"].get("name") if isinstance(calls[0]["functionCall"], dict) else None
        if not (text.startswith(f"mock-thought:{name}:") and text.endswith("\xff")):
            raise BadRequest("Corrupted thought signature.", param=f"contents[{index}]")


def _usage(reply: Reply) -> JSON:
    return {
        "promptTokenCount": reply.prompt_tokens,
        "candidatesTokenCount": reply.completion_tokens,
        "totalTokenCount": reply.total_tokens,
    }


def _parts(reply: Reply, response_id: str) -> list[JSON]:
    if reply.tool_call is not None:
        call = {"name": reply.tool_call.name, "args": reply.tool_call.arguments}
        return [{"functionCall": call, "thoughtSignature": thought_signature(reply.tool_call.name, response_id)}]
    return [{"text": reply.text}]


def generate_body(reply: Reply, *, model: str, response_id: str, with_usage: bool = True) -> JSON:
    body: JSON = {
        "candidates": [
            {
                "content": {"role": "model", "parts": _parts(reply, response_id)},
                "finishReason": _FINISH[reply.finish],
                "index": 0,
            }
        ],
        "modelVersion": model,
        "responseId": response_id,
    }
    if with_usage:
        body["usageMetadata"] = _usage(reply)
    return body


def _event(payload: JSON) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"


def generate_stream_plan(reply: Reply, *, model: str, response_id: str, with_usage: bool = True) -> StreamPlan:
    """Text arrives piece by piece; a function call arrives whole in one chunk, as Gemini sends it."""

    def chunk(parts: list[JSON], finish: str | None = None, usage: bool = False) -> bytes:
        candidate: JSON = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        payload: JSON = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
        if usage and with_usage:
            payload["usageMetadata"] = _usage(reply)
        return _event(payload)

    plan = StreamPlan(content_type=SSE_CONTENT_TYPE)
    if reply.tool_call is not None:
        plan.content = [chunk(_parts(reply, response_id))]
    else:
        plan.content = [chunk([{"text": piece}]) for piece in reply.pieces]
    plan.trailer = [chunk([{"text": ""}], _FINISH[reply.finish], usage=True)]
    return plan
