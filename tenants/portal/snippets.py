"""Ready-to-paste client configuration shown next to a new key's secret.

Pure functions: the view passes the base URL (from the request host), the
secret and a model name; nothing here is stored or logged.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Snippet:
    """One client's configuration: where it goes, and the text to paste."""

    slug: str
    title: str
    where: str
    code: str
    note: str = ""


def default_model(allowed_models: list[str], tier_names: list[str]) -> str:
    """The model name the snippets use: the key's first allowed name, else a tier, else ``auto``."""
    if allowed_models:
        return allowed_models[0]
    if tier_names:
        return tier_names[0]
    return "auto"


def codex_config(*, api_base: str, model: str) -> str:
    """``~/.codex/config.toml`` for the Codex CLI (the key comes from ``GATEWAY_API_KEY``)."""
    return (
        f"model = {json.dumps(model)}\n"
        'model_provider = "gateway"\n\n'
        "[model_providers.gateway]\n"
        'name = "LLM gateway"\n'
        f"base_url = {json.dumps(api_base)}\n"
        'env_key = "GATEWAY_API_KEY"\n'
        'wire_api = "responses"\n'
    )


def client_snippets(*, base_url: str, secret: str, model: str) -> list[Snippet]:
    """Configuration for Cursor, Continue, Open Interpreter, Codex, Claude Code, OpenCode, the openai SDK and curl.

    ``base_url`` is the server root (``http://host:port``); OpenAI-style clients get
    ``/v1`` appended, Claude Code appends ``/v1/messages`` itself. The Codex, Claude
    Code and OpenCode snippets are the ones the agent conformance suite runs.
    """
    api_base = f"{base_url}/v1"
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello"}]})
    return [
        Snippet(
            slug="cursor",
            title="Cursor",
            where="Settings → Models → API Keys: paste the key as OpenAI API Key, turn on "
            "“Override OpenAI Base URL”, then add the model name as a custom model.",
            code=(
                f"OpenAI API Key:           {secret}\n"
                f"Override OpenAI Base URL: {api_base}\n"
                f"Custom model:             {model}"
            ),
            note="Cursor calls the base URL from its own servers, so the gateway must be reachable from the internet.",
        ),
        Snippet(
            slug="continue",
            title="Continue",
            where="~/.continue/config.yaml",
            code=(
                "name: Gateway\nversion: 1.0.0\nschema: v1\nmodels:\n"
                f"  - name: Gateway {model}\n    provider: openai\n    model: {model}\n"
                f"    apiBase: {api_base}\n    apiKey: {secret}\n"
                "    roles:\n      - chat\n      - edit\n      - apply\n"
            ),
        ),
        Snippet(
            slug="open-interpreter",
            title="Open Interpreter",
            where="Shell",
            code=(
                f"interpreter --api_base {shlex.quote(api_base)} --api_key {shlex.quote(secret)} "
                f"--model {shlex.quote('openai/' + model)}"
            ),
        ),
        Snippet(
            slug="codex",
            title="Codex CLI",
            where="~/.codex/config.toml — then in your shell: export GATEWAY_API_KEY=<the key> and run codex",
            code=codex_config(api_base=api_base, model=model),
            note=f"export GATEWAY_API_KEY={shlex.quote(secret)}",
        ),
        Snippet(
            slug="opencode",
            title="OpenCode",
            where="~/.config/opencode/opencode.json",
            code=json.dumps(
                {
                    "$schema": "https://opencode.ai/config.json",
                    "provider": {
                        "gateway": {
                            "npm": "@ai-sdk/openai-compatible",
                            "name": "LLM gateway",
                            "options": {"baseURL": api_base, "apiKey": secret},
                            "models": {model: {"name": model, "tool_call": True}},
                        }
                    },
                    "model": f"gateway/{model}",
                },
                indent=2,
            ),
        ),
        Snippet(
            slug="claude-code",
            title="Claude Code",
            where="Shell, before starting claude",
            code=(
                f"export ANTHROPIC_BASE_URL={shlex.quote(base_url)}\n"
                f"export ANTHROPIC_AUTH_TOKEN={shlex.quote(secret)}\n"
                f"export ANTHROPIC_MODEL={shlex.quote(model)}\n"
                f"export ANTHROPIC_DEFAULT_HAIKU_MODEL={shlex.quote(model)}\n"
                "claude"
            ),
        ),
        Snippet(
            slug="openai-python",
            title="OpenAI SDK (Python)",
            where="Python",
            code=(
                "from openai import OpenAI\n\n"
                f"client = OpenAI(base_url={json.dumps(api_base)}, api_key={json.dumps(secret)})\n"
                "reply = client.chat.completions.create(\n"
                f"    model={json.dumps(model)},\n"
                '    messages=[{"role": "user", "content": "Hello"}],\n'
                ")\n"
                "print(reply.choices[0].message.content)\n"
            ),
        ),
        Snippet(
            slug="curl",
            title="curl",
            where="Shell",
            code=(
                f"curl {shlex.quote(api_base + '/chat/completions')} \\\n"
                f'  -H "Authorization: Bearer {secret}" \\\n'
                '  -H "Content-Type: application/json" \\\n'
                f"  -d {shlex.quote(body)}"
            ),
        ),
    ]
