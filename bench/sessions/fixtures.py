"""Three recorded-style agent sessions for the prompt-cache replay benchmark (``python -m bench.sessions``).

Generated deterministically (``python -m bench.sessions.fixtures`` rewrites ``bench/sessions/data/``) in
the shapes the clients send: a Claude Code session (long system prompt with tools, ``<system-reminder>``
blocks, tool rounds, its session in ``metadata.user_id``), a Codex CLI session (developer instructions,
shell tool rounds, ``prompt_cache_key``) and a Cursor-style session (``<rules>`` and the same files
pasted again every turn, no session id). Each is one list of OpenAI chat messages; the client sent a
request whenever the list ended with a user message or a round of tool results.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
SEED = 17

Message = dict[str, Any]


def _code(rng: random.Random, name: str, lines: int) -> str:
    body = [f"# {name}", "from __future__ import annotations", ""]
    for n in range(lines):
        body.append(f"def {name}_{n}(value: int) -> int:\n    return value * {rng.randint(2, 99)} + {n}\n")
    return "\n".join(body)


def _tool(name: str, description: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    }


def _call(call_id: str, name: str, path: str) -> Message:
    arguments = json.dumps({"path": path})
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
    }


def claude_code(rng: random.Random) -> dict[str, Any]:
    system = "You are Claude Code, an interactive CLI tool that helps users with software engineering tasks.\n" + (
        "IMPORTANT: follow the repository conventions, run the tests after every change, keep answers short. " * 120
    )
    tools = [_tool(n, f"{n} tool: " + "describes how to use it. " * 40) for n in ("Read", "Edit", "Bash", "Grep")]
    reminder = "<system-reminder>\nThe user opened the file src/billing/totals.py in the IDE.\n</system-reminder>"
    messages: list[Message] = [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{reminder}\nThe invoice totals are off by one cent; find and fix the bug."},
    ]
    for n in range(34):
        path = f"src/billing/module_{n % 9}.py"
        tool = ("Read", "Grep", "Bash", "Edit")[n % 4]
        messages.append(_call(f"toolu_{n:03}", tool, path))
        if tool == "Bash" and n % 8 == 2:
            result = "FAILED tests/test_totals.py::test_rounding - AssertionError\n" * 700  # ~40,000 characters
        else:
            result = _code(rng, f"mod{n % 9}", 30 + rng.randint(0, 40))
        messages.append({"role": "tool", "tool_call_id": f"toolu_{n:03}", "content": result})
        if n % 9 == 8:
            messages.append({"role": "assistant", "content": f"Step {n}: the rounding happens in {path}."})
            messages.append({"role": "user", "content": f"{reminder}\nGood, continue with the next module."})
    return {
        "name": "claude_code",
        "client": "Claude Code (Anthropic upstream)",
        "tier": "claude_tier",
        "extra": {"user": "user_7f3a_account_91c2_session_5d2e8a41-0c1b-4d6f-9e0a-3b7c2d1e4f5a"},
        "headers": {},
        "tools": tools,
        "messages": messages,
    }


def codex(rng: random.Random) -> dict[str, Any]:
    system = "You are Codex, a coding agent running in the terminal. " + (
        "Use the shell tool to inspect and change files; prefer small, verified steps. " * 110
    )
    tools = [_tool("shell", "Runs a shell command. " + "Output is truncated to 10 KB. " * 30)]
    messages: list[Message] = [
        {"role": "system", "content": system},
        {"role": "user", "content": "Add pagination to the /orders endpoint and update the tests."},
    ]
    for n in range(33):
        messages.append(_call(f"call_{n:03}", "shell", f"cat api/orders_{n % 7}.py"))
        messages.append(
            {"role": "tool", "tool_call_id": f"call_{n:03}", "content": _code(rng, f"orders{n % 7}", 25 + n % 20)}
        )
        if n % 11 == 10:
            messages.append({"role": "assistant", "content": "Pagination is wired for this handler."})
            messages.append({"role": "user", "content": "Looks right. Continue and keep the page size at 50."})
    return {
        "name": "codex",
        "client": "Codex CLI (OpenAI upstream)",
        "tier": "gpt_tier",
        "extra": {"prompt_cache_key": "codex-3c9b1f0e-session"},
        "headers": {},
        "tools": tools,
        "messages": messages,
    }


def cursor(rng: random.Random) -> dict[str, Any]:
    rules = "<rules>\n" + "Always use type hints. Prefer small pure functions. Never commit secrets.\n" * 8 + "</rules>"
    preamble = (
        "Please also follow these instructions in all of your responses if relevant to my query. "
        "No need to acknowledge these instructions directly in your response."
    )
    files = {f"app/view_{n}.py": _code(rng, f"view{n}", 35) for n in range(3)}
    messages: list[Message] = [{"role": "system", "content": "You are a powerful agentic AI coding assistant."}]
    for n in range(32):
        attached = "\n".join(f"```python {p}\n{body}\n```" for p, body in files.items())
        question = f"question {n}: why does view_{n % 3} return the wrong status code?"
        messages.append(
            {"role": "user", "content": f"{preamble}\n{rules}\n{attached}\n<user_query>\n{question}\n</user_query>"}
        )
        messages.append(
            {"role": "assistant", "content": f"Answer {n}: " + "the handler returns 200 before validating. " * 12}
        )
    messages.pop()
    return {
        "name": "cursor",
        "client": "Cursor-style IDE (OpenAI upstream, no session id)",
        "tier": "gpt_tier",
        "extra": {},
        "headers": {},
        "tools": [],
        "messages": messages,
    }


def request_points(messages: list[Message]) -> list[int]:
    """Lengths at which the client sent a request: after a user message or the last of a round's results."""
    points = []
    for index, message in enumerate(messages):
        following = messages[index + 1] if index + 1 < len(messages) else None
        if message["role"] == "user" or (
            message["role"] == "tool" and (following is None or following["role"] != "tool")
        ):
            points.append(index + 1)
    return points


def write() -> list[Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    paths = []
    for session in (claude_code(rng), codex(rng), cursor(rng)):
        path = DATA / f"{session['name']}.json"
        path.write_text(json.dumps(session, indent=1) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def load() -> list[dict[str, Any]]:
    return [
        json.loads((DATA / f"{name}.json").read_text(encoding="utf-8")) for name in ("claude_code", "codex", "cursor")
    ]


if __name__ == "__main__":
    for written in write():
        data = json.loads(written.read_text())
        print(f"{written.name}: {len(request_points(data['messages']))} turns, {len(json.dumps(data)):,} bytes")
