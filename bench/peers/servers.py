"""The servers under test, each started in a process group of its own on the server CPU.

A ``Running`` server knows its process group (for CPU accounting) and how to
address it; ``Route`` is what a client sends to reach the mock upstream
through it (URL, headers, model name).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench import procs, stack
from bench.peers import install
from bench.peers.cpu import Pinning

READY_TIMEOUT_S = 180.0
LITELLM_MASTER_KEY = "sk-peers-bench"


@dataclass(frozen=True, slots=True)
class Route:
    """How a client reaches the mock upstream through one server."""

    url: str
    headers: dict[str, str]
    model: str


@dataclass(frozen=True, slots=True)
class Running:
    name: str
    pgid: int
    base_url: str


def _start(args: list[str], env: Mapping[str, str], log: Path, pinning: Pinning, cwd: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*pinning.server_prefix(), *args],
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the unit of CPU accounting and of stopping
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # workers that outlived their parent


@contextlib.contextmanager
def running(
    name: str, args: list[str], env: Mapping[str, str], ready_path: str, port: int, logs: Path, pinning: Pinning
) -> Iterator[Running]:
    proc = _start(args, env, logs / f"{name}.log", pinning, procs.BASE_DIR)
    base_url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for_http(base_url + ready_path, proc, timeout=READY_TIMEOUT_S)
        yield Running(name, proc.pid, base_url)
    finally:
        _stop(proc)


def portkey(env: Mapping[str, str], logs: Path, pinning: Pinning) -> contextlib.AbstractContextManager[Running]:
    """Portkey's gateway under node, in production mode without its log UI."""
    entry = install.portkey()
    port = procs.free_port()
    portkey_env = {**env, "NODE_ENV": "production"}
    return running(
        "portkey", ["node", str(entry), f"--port={port}", "--headless"], portkey_env, "/", port, logs, pinning
    )


def portkey_route(server: Running, mock_url: str) -> Route:
    headers = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"{mock_url}/v1",
        "Authorization": "Bearer sk-mock",
    }
    return Route(f"{server.base_url}/v1/chat/completions", headers, stack.UPSTREAM_MODEL)


LITELLM_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{upstream}
      api_base: {mock_url}/v1
      api_key: sk-mock
general_settings:
  master_key: {master_key}
litellm_settings:
  telemetry: false
"""


def litellm(
    env: Mapping[str, str], logs: Path, pinning: Pinning, mock_url: str
) -> contextlib.AbstractContextManager[Running]:
    """LiteLLM's proxy (its own uvicorn, one worker), one model on the mock, a master key, no database."""
    command = install.litellm()
    port = procs.free_port()
    config = logs / "litellm.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        LITELLM_CONFIG.format(
            model="peers-model", upstream=stack.UPSTREAM_MODEL, mock_url=mock_url, master_key=LITELLM_MASTER_KEY
        )
    )
    litellm_env = {
        **{k: v for k, v in env.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))},
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list at start
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
    }
    args = [str(command), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    return running("litellm", args, litellm_env, "/health/liveliness", port, logs, pinning)


def litellm_route(server: Running) -> Route:
    return Route(
        f"{server.base_url}/v1/chat/completions", {"Authorization": f"Bearer {LITELLM_MASTER_KEY}"}, "peers-model"
    )


def gateway(
    server: str, env: Mapping[str, str], logs: Path, pinning: Pinning
) -> contextlib.AbstractContextManager[Running]:
    """This gateway under Daphne or uvicorn, started as ``bench.stack.server_command`` (the README's commands)."""
    port = procs.free_port()
    return running(f"gateway-{server}", stack.server_command(server, port), env, "/live", port, logs, pinning)


def bare_relay(
    env: Mapping[str, str], logs: Path, pinning: Pinning, mock_url: str
) -> contextlib.AbstractContextManager[Running]:
    """``bench/bare_relay.py`` under uvicorn with the gateway's flags: the floor of a Python relay on this stack."""
    port = procs.free_port()
    relay_env = {**env, "BARE_RELAY_UPSTREAM": f"{mock_url}/v1/chat/completions"}
    command = stack.server_command("uvicorn", port, app="bench.bare_relay:application")
    return running("bare-relay", command, relay_env, "/live", port, logs, pinning)


def bare_relay_route(server: Running) -> Route:
    return Route(f"{server.base_url}/v1/chat/completions", {}, stack.UPSTREAM_MODEL)


def gateway_route(server: Running, secret: str, model: str, *, no_store: bool = False) -> Route:
    headers = {"Authorization": f"Bearer {secret}"}
    if no_store:
        headers["X-Gateway-Cache"] = "no-store"  # the cache step decides BYPASS: no lookup, no store
    return Route(f"{server.base_url}/v1/chat/completions", headers, model)


def mock_route(mock_url: str) -> Route:
    return Route(f"{mock_url}/v1/chat/completions", {"Authorization": "Bearer sk-mock"}, stack.UPSTREAM_MODEL)
