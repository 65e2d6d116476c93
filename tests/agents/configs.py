"""Each agent CLI configured as the README tells users to: base URL, key, model."""

from __future__ import annotations

import json

from tests.agents.harness import Workspace

Command = tuple[list[str], list[str], dict[str, str]]  # arguments before the prompt, after it, environment


def codex(workspace: Workspace, base_url: str, key: str, model: str) -> Command:
    """``codex exec`` with a ``model_providers.gateway`` entry (``wire_api = "responses"``)."""
    codex_home = workspace.home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "gateway"\n'
        "check_for_update_on_startup = false\n"
        "[model_providers.gateway]\n"
        'name = "LLM gateway"\n'
        f'base_url = "{base_url}/v1"\n'
        'env_key = "GATEWAY_API_KEY"\n'
        'wire_api = "responses"\n'
        "[analytics]\n"
        "enabled = false\n"
    )
    env = {"CODEX_HOME": str(codex_home), "GATEWAY_API_KEY": key}
    return ["exec", "--skip-git-repo-check", "-s", "workspace-write"], [], env


def claude(workspace: Workspace, base_url: str, key: str, model: str | None) -> Command:
    """``claude -p`` with ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_AUTH_TOKEN`` (no model: its own defaults)."""
    env = {"ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_AUTH_TOKEN": key}
    if model:
        env["ANTHROPIC_MODEL"] = model
    return ["-p"], ["--allowedTools", "Write", "--output-format", "text"], env


def opencode(workspace: Workspace, base_url: str, key: str, model: str) -> Command:
    """``opencode run`` with an ``@ai-sdk/openai-compatible`` provider named ``gateway``."""
    config_dir = workspace.home / ".config" / "opencode"
    config_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "provider": {
            "gateway": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "LLM gateway",
                "options": {"baseURL": f"{base_url}/v1", "apiKey": key},
                "models": {model: {"name": model, "tool_call": True}},
            }
        },
        "model": f"gateway/{model}",
    }
    (config_dir / "opencode.json").write_text(json.dumps(config, indent=2))
    return ["run"], [], {}
