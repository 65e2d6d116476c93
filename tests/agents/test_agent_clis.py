"""Agent conformance: Codex CLI, Claude Code and OpenCode complete a task with a tool call through the gateway.

Each CLI runs non-interactively (``codex exec``, ``claude -p``, ``opencode run``)
against a real Daphne gateway whose only model sits behind the bundled mock
upstream, speaking each wire format (OpenAI, Anthropic, Ollama). The prompt
carries a mock directive: the first upstream call asks the agent to write a
file with its own tool, the agent runs it and sends the result, and the mock's
final answer must reach the agent's output. Asserted: exit status, final text,
the file on disk, and one usage event per upstream call with tokens and cost.
The agents name no gateway model of their own choosing: Claude Code uses its
built-in ``claude-*`` default and Codex ``gpt-5.5-codex``, both resolved by the
seeded aliases.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from billing.models import UsageEvent
from routing.aliases.section import apply_aliases_section
from tests.agents import configs
from tests.agents.harness import Workspace, agent_binary, mock_marker, run_agent
from tests.conftest import free_port, server_env, start_process, stop_process, wait_for_http
from tests.factories import make_key, make_model, make_provider, make_tier

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

ANTHROPIC_KEY_ENV = "AGENTS_TEST_ANTHROPIC_KEY"
# openai-responses: an OpenAI provider with supports_responses, which /v1/responses passes through to.
KINDS = ("openai", "openai-responses", "anthropic", "ollama")
FINAL = "All done: the file is written."
# Seeded in routing/defaults/gateway-config.yaml; repeated here because tests start from an empty database.
ALIASES = [
    {"pattern": "claude-*", "target": "code_gen"},
    {"pattern": "gpt-*codex*", "target": "code_gen"},
]


@pytest.fixture(scope="module")
def gateway(
    django_db_setup: None, django_db_blocker: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int, str]]:
    """A Daphne gateway on a TCP port and a Unix socket (which agents in a network namespace reach)."""
    port = free_port()
    socket_path = str(tmp_path_factory.mktemp("gw") / "gateway.sock")
    args = [sys.executable, "-m", "daphne", "-p", str(port), "-u", socket_path, "gateway_platform.asgi:application"]
    proc = start_process(
        args, server_env(**{ANTHROPIC_KEY_ENV: "mock-anthropic-key", "GATEWAY_MAX_BODY_BYTES": "8388608"})
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/live", proc=proc)
    yield url, port, socket_path
    stop_process(proc)


def deploy(mock_upstream_url: str, kind: str, upstream_model: str) -> None:
    if kind == "openai":
        provider = make_provider(f"{mock_upstream_url}/v1", kind="openai", name="mockai")
    elif kind == "openai-responses":
        provider = make_provider(f"{mock_upstream_url}/v1", kind="openai", name="mockai", supports_responses=True)
    elif kind == "anthropic":
        provider = make_provider(mock_upstream_url, kind="anthropic", name="mockai", api_key_env=ANTHROPIC_KEY_ENV)
    else:
        provider = make_provider(mock_upstream_url, kind="ollama", name="mockai")
    model = make_model(provider, name="mock-coder", upstream_model=upstream_model, input_cost="2", output_cost="4")
    make_tier("code_gen", [model])
    assert apply_aliases_section(ALIASES, "upsert") == []


def mock_calls(mock_upstream_url: str, upstream_model: str) -> list[dict[str, object]]:
    events = httpx2.get(f"{mock_upstream_url}/_mock/events", timeout=5).json()
    return [e for e in events if e.get("model") == upstream_model]


def tool_call(agent: str, target: Path) -> tuple[str, dict[str, object]]:
    """The tool call the mock asks each agent for: write ``target`` with the agent's own file tool."""
    text = f"hello from {agent}\n"
    if agent == "codex":
        return "exec_command", {"cmd": f"printf 'hello from {agent}\\n' > {target}"}
    if agent == "claude":
        return "Write", {"file_path": str(target), "content": text}
    return "write", {"filePath": str(target), "content": text}


def command_for(agent: str, workspace: Workspace, base_url: str, key: str) -> configs.Command:
    """The portal's snippet for each agent; Codex names its own kind of model (an alias), Claude Code none."""
    if agent == "codex":
        return configs.codex(workspace, base_url, key, "gpt-5.5-codex")
    if agent == "claude":
        return configs.claude(workspace, base_url, key, None)
    return configs.opencode(workspace, base_url, key, "code_gen")


@pytest.mark.parametrize("kind", KINDS)
# Claude Code and Codex join once /v1/messages and /v1/responses serve them.
@pytest.mark.parametrize("agent", ["opencode", "codex", "claude"])
def test_agent_completes_a_task_with_a_tool_call(
    agent: str,
    kind: str,
    gateway: tuple[str, int, str],
    mock_upstream_url: str,
    drained_events: Callable[..., list[UsageEvent]],
    tmp_path: Path,
) -> None:
    binary = agent_binary(agent)
    _, port, socket_path = gateway
    upstream_model = f"agent-{agent}-{kind}-{time.monotonic_ns()}"
    deploy(mock_upstream_url, kind, upstream_model)
    api_key, secret = make_key()
    workspace = Workspace.create(tmp_path)
    target = workspace.cwd / "hello.txt"
    call, args = tool_call(agent, target)
    prompt = f"Create hello.txt saying hello. {mock_marker(call, args, FINAL)}"
    before, after, agent_env = command_for(agent, workspace, f"http://127.0.0.1:{port}", secret)
    result = run_agent(
        [str(binary), *before, prompt, *after],
        workspace=workspace,
        env=workspace.env(**agent_env),
        port=port,
        socket_path=socket_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert FINAL in result.stdout, output[-4000:]
    assert target.read_text() == f"hello from {agent}\n"
    calls = mock_calls(mock_upstream_url, upstream_model)
    assert len(calls) >= 2  # the tool call, then the final answer
    if agent == "codex" and kind == "openai-responses":  # passed through, not translated to chat
        assert {c["path"] for c in calls} == {"/v1/responses"}
    events = drained_events(len(calls), api_key_id=api_key.pk)
    served = [e for e in events if e.model == "mock-coder"]
    assert len(served) == len(calls), [(e.endpoint, e.status_code, e.error_code) for e in events]
    for event in served:
        assert event.status_code == 200
        assert event.prompt_tokens > 0 and event.completion_tokens > 0
        assert event.cost_usd > 0


@pytest.fixture(scope="module")
def seeded_gateway(
    django_db_setup: None, django_db_blocker: object, mock_upstream_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, str]]:
    """A gateway like `make run` without credentials: every provider routed to the mock upstream."""
    port = free_port()
    socket_path = str(tmp_path_factory.mktemp("seeded") / "gateway.sock")
    args = [sys.executable, "-m", "daphne", "-p", str(port), "-u", socket_path, "gateway_platform.asgi:application"]
    env = server_env(GATEWAY_MOCK_UPSTREAM_URL=mock_upstream_url, GATEWAY_MAX_BODY_BYTES="8388608")
    for name in ("DEEPSEEK_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        env.pop(name, None)
    proc = start_process(args, env)
    wait_for_http(f"http://127.0.0.1:{port}/live", proc=proc)
    yield port, socket_path
    stop_process(proc)


@pytest.mark.parametrize("agent", ["claude", "codex"])
def test_agents_work_with_the_seeded_defaults_and_no_model_configured(
    agent: str,
    seeded_gateway: tuple[int, str],
    mock_upstream_url: str,
    drained_events: Callable[..., list[UsageEvent]],
    tmp_path: Path,
) -> None:
    """Zero configuration: `seed_defaults`, a key, and the agent's own default model names (aliases)."""
    from routing.config_file import config_seed_defaults

    binary = agent_binary(agent)
    port, socket_path = seeded_gateway
    config_seed_defaults()
    api_key, secret = make_key()
    httpx2.delete(f"{mock_upstream_url}/_mock/events", timeout=5)
    workspace = Workspace.create(tmp_path)
    target = workspace.cwd / "hello.txt"
    call, args = tool_call(agent, target)
    if agent == "codex":
        # With its own default model Codex offers its tools in namespaces (additional_tools); files are
        # written through the JavaScript `exec` tool calling the nested `exec_command`.
        command = f"printf 'hello from codex\\n' > {target}"
        call, args = "functions__exec", {"input": f"await tools.exec_command({{cmd: {json.dumps(command)}}})"}
    base_url = f"http://127.0.0.1:{port}"
    if agent == "claude":
        before, after, agent_env = configs.claude(workspace, base_url, secret, None)
    else:
        before, after, agent_env = configs.codex(workspace, base_url, secret, "unused")
        config = workspace.home / ".codex" / "config.toml"
        config.write_text(config.read_text().replace('model = "unused"\n', ""))  # Codex's own default model
    result = run_agent(
        [str(binary), *before, f"Create hello.txt. {mock_marker(call, args, FINAL)}", *after],
        workspace=workspace,
        env=workspace.env(**agent_env),
        port=port,
        socket_path=socket_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert FINAL in result.stdout
    assert target.read_text() == f"hello from {agent}\n"
    calls = httpx2.get(f"{mock_upstream_url}/_mock/events", timeout=5).json()
    events = drained_events(len(calls), api_key_id=api_key.pk)
    served = [e for e in events if e.model]
    assert len(served) == len(calls) >= 2
    assert all(e.requested_model.startswith(("claude-", "gpt-")) for e in served)  # the agent's own names
    assert all(e.status_code == 200 and e.cost_usd > 0 for e in served)
