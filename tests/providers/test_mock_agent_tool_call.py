"""The mock's ``call=NAME args=JSON`` directive: one tool round trip, as agent conformance runs use it."""

from __future__ import annotations

import json
from urllib.parse import quote

from providers.mock_upstream.directives import parse_directives
from providers.mock_upstream.replies import Conversation, build_reply

ARGS = {"file_path": "/tmp/x/hello.txt", "content": "hi\n"}
MARKER = f"[[mock: call=Write args={quote(json.dumps(ARGS), safe='')} reply=Done%20writing.]]"


def reply_for(conversation: Conversation) -> tuple[str | None, str]:
    reply = build_reply(conversation, parse_directives(conversation.texts, "m"))
    return (reply.tool_call.name if reply.tool_call else None), reply.text


def test_it_asks_for_the_named_tool_with_the_given_arguments() -> None:
    conversation = Conversation(texts=[MARKER], last_user_text=MARKER, tool_names=["Bash", "Write"])
    reply = build_reply(conversation, parse_directives(conversation.texts, "m"))
    assert reply.tool_call is not None
    assert reply.tool_call.name == "Write"
    assert json.loads(reply.tool_call.arguments_json) == ARGS


def test_it_answers_once_any_tool_result_came_back_even_when_text_follows_it() -> None:
    conversation = Conversation(
        texts=[MARKER, "created", "<system-reminder>"],
        last_user_text="<system-reminder>",
        tool_names=["Write"],
        tool_results=["created"],
    )
    assert reply_for(conversation) == (None, "Done writing.")


def test_it_does_not_call_a_tool_that_was_not_offered() -> None:
    conversation = Conversation(texts=[MARKER], last_user_text=MARKER, tool_names=["Bash"])
    assert reply_for(conversation)[0] is None


def test_bad_args_are_ignored() -> None:
    directives = parse_directives(["[[mock: call=Write args=%5B1%5D]]"], "m")
    assert directives.call == "Write" and directives.args is None
