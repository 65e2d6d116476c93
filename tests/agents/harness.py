"""Running the real agent CLIs against a test gateway, with nothing but loopback reachable.

The CLIs come from ``make agents`` (``var/agents``). Each run gets a fresh
HOME and working directory, configuration pointing at the gateway, and the
switches that turn off telemetry and update checks. Where the machine allows
it (``unshare -n`` as root) the run also happens in a network namespace of
its own that holds only loopback (``tests/agents/netns_run.py``): the CLI
reaches the gateway through its Unix socket and nothing else.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent.parent
AGENTS_BIN = BASE_DIR / "var" / "agents" / "node_modules" / ".bin"
NETNS_RUN = Path(__file__).resolve().parent / "netns_run.py"
QUIET_ENV = {
    # Claude Code
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    # OpenCode
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    # Codex
    "CODEX_DISABLE_UPDATE_CHECK": "1",
    "NO_COLOR": "1",
}


def agent_binary(name: str) -> Path:
    """The installed CLI, or a skip (a failure under ``CI=true``) saying how to get it."""
    path = AGENTS_BIN / name
    if path.exists():
        return path
    reason = (
        "npm is not installed, so the agent CLIs could not be installed"
        if shutil.which("npm") is None
        else f"{path} is missing: run `make agents`"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"agent conformance tests cannot run under CI: {reason}")
    pytest.skip(reason)


@functools.cache
def netns_available() -> bool:
    """Whether commands can run in a loopback-only network namespace here."""
    if shutil.which("unshare") is None:
        return False
    try:
        probe = [sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9), 0.1)"]
        result = subprocess.run(["unshare", "-n", *probe], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"Operation not permitted" not in result.stderr and result.returncode in (0, 1)


def mock_marker(call: str, args: dict[str, object], reply: str) -> str:
    """The mock upstream directive: ask for one ``call`` with ``args``, then answer ``reply``."""
    encoded = quote(json.dumps(args), safe="")
    return f"[[mock: call={call} args={encoded} reply={quote(reply, safe='')}]]"


@dataclass
class Workspace:
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def cwd(self) -> Path:
        return self.root / "work"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "TMPDIR": str(self.root / "tmp"),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            **QUIET_ENV,
        }
        env.update(extra)
        return env

    @classmethod
    def create(cls, root: Path) -> Workspace:
        workspace = cls(root)
        for path in (workspace.home, workspace.cwd, root / "tmp"):
            path.mkdir(parents=True, exist_ok=True)
        return workspace


def run_agent(
    command: list[str], *, workspace: Workspace, env: dict[str, str], port: int, socket_path: str, timeout: float = 150
) -> subprocess.CompletedProcess[str]:
    """Run one agent CLI to completion (stdin closed); loopback-only when the machine allows it."""
    if netns_available():
        command = ["unshare", "-n", sys.executable, str(NETNS_RUN), str(port), socket_path, "--", *command]
    return subprocess.run(
        command,
        cwd=workspace.cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
