"""Each agent CLI configured with the portal's snippet for it (``tenants.portal.snippets``), as printed.

The only additions are test hardening a user does not need: no telemetry, no
update checks, no sharing (``tests.agents.harness.QUIET_ENV`` and the lines below).
"""

from __future__ import annotations

import json
import shlex

from tenants.portal.snippets import Snippet, client_snippets
from tests.agents.harness import Workspace

Command = tuple[list[str], list[str], dict[str, str]]  # arguments before the prompt, after it, environment


def snippet(slug: str, base_url: str, key: str, model: str) -> Snippet:
    return next(s for s in client_snippets(base_url=base_url, secret=key, model=model) if s.slug == slug)


def exports(text: str) -> dict[str, str]:
    """``export NAME=value`` lines of a shell snippet."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0]
    return env


def codex(workspace: Workspace, base_url: str, key: str, model: str) -> Command:
    """``codex exec`` with the portal's ``config.toml`` and its ``export GATEWAY_API_KEY``."""
    printed = snippet("codex", base_url, key, model)
    codex_home = workspace.home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    quiet = "check_for_update_on_startup = false\n"
    (codex_home / "config.toml").write_text(quiet + printed.code + "\n[analytics]\nenabled = false\n")
    env = {"CODEX_HOME": str(codex_home), **exports(printed.note)}
    return ["exec", "--skip-git-repo-check", "-s", "workspace-write"], [], env


def claude(workspace: Workspace, base_url: str, key: str, model: str | None) -> Command:
    """``claude -p`` with the portal's exports; ``model=None`` drops the model ones (Claude Code's own names)."""
    env = exports(snippet("claude-code", base_url, key, model or "unused").code)
    if model is None:
        env = {k: v for k, v in env.items() if k in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN")}
    return ["-p"], ["--allowedTools", "Write", "--output-format", "text"], env


def opencode(workspace: Workspace, base_url: str, key: str, model: str) -> Command:
    """``opencode run`` with the portal's ``opencode.json``."""
    config = json.loads(snippet("opencode", base_url, key, model).code)
    config.update(autoupdate=False, share="disabled")
    config_dir = workspace.home / ".config" / "opencode"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "opencode.json").write_text(json.dumps(config, indent=2))
    return ["run"], [], {}
