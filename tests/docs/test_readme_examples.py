"""Every runnable example in the README runs, against a real gateway and the mock upstream.

The gateway is set up the way ``make run`` sets it up without provider credentials: the seeded
defaults (``seed_defaults``), every provider routed to the bundled mock upstream. Each example
gets a fresh key in ``$KEY`` (tenant ``acme``, team ``platform``) and a superuser's personal
token in ``$TOKEN``; its ``http://127.0.0.1:8000`` is this gateway and ``.venv/bin/python`` is
this interpreter. An example passes when it exits 0 (curl fails on an HTTP error status unless
the example states what it expects) and prints every ``expect`` string of its marker.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections

from caching import entry_queue
from tests.conftest import BASE_DIR, server_env, start_gateway, stop_process
from tests.docs.examples import Example, console_commands, find_examples

README = (BASE_DIR / "README.md").read_text(encoding="utf-8")
EXAMPLES = find_examples(README)
PROVIDER_KEY_ENVS = ("DEEPSEEK_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY")


# --- the parser (pure) -------------------------------------------------------------------------


def test_console_commands_joins_continuations_and_skips_output() -> None:
    text = "$ echo one \\\n    two\none two\n$ true\n"
    assert console_commands(text) == ["echo one \\\n    two", "true"]


def test_find_examples_reads_marked_blocks_only_and_their_expectations() -> None:
    text = (
        "```console\n$ false\n```\n\n"
        '  <!-- example: limits expect="HTTP/1.1 429" expect="rate_limit_exceeded" -->\n'
        "  ```console\n  $ curl x\n  ```\n"
    )
    (example,) = find_examples(text)
    assert example == Example("limits", "console", "$ curl x", ("HTTP/1.1 429", "rate_limit_exceeded"))


def test_find_examples_refuses_duplicate_names_and_unknown_languages() -> None:
    block = "<!-- example: a -->\n```console\n$ true\n```\n"
    with pytest.raises(ValueError, match="used twice"):
        find_examples(block + block)
    with pytest.raises(ValueError, match="cannot run"):
        find_examples("<!-- example: b -->\n```yaml\nx: 1\n```\n")


# The user-visible features that must keep a runnable example (issue 18): a name may only be
# removed from here together with the feature.
REQUIRED = {
    "quickstart-chat-curl",
    "quickstart-stream-openai-sdk",
    "chat-json",
    "models",
    "responses-openai-sdk",
    "messages-anthropic-sdk",
    "count-tokens",
    "embeddings-and-completions",
    "aliases",
    "failover",
    "error-shape",
    "streamed-cost",
    "auto-tiers-skills",
    "token-reduction",
    "cascade",
    "guardrail",
    "trajectory-export",
    "sessions",
    "cache",
    "budget-exceeded",
    "rate-limit",
    "rollups",
    "usage-api",
    "management-api",
    "dead-letters",
    "config-export-import",
    "health-and-metrics",
    "bring-your-own-key",
    "responses-input-tokens",
    "explicit-model",
    "housekeeping-commands",
    "cache-bypass",
}


def test_every_feature_keeps_its_runnable_example() -> None:
    # Also guards the marker format: if it stopped matching, the runs below would silently be none.
    missing = sorted(REQUIRED - {e.name for e in EXAMPLES})
    assert missing == [], "README examples missing (or their marker is broken): " + ", ".join(missing)


# --- running them ------------------------------------------------------------------------------


@contextlib.contextmanager
def seeded_gateway(mock_upstream_url: str) -> Iterator[str]:
    """A gateway like `make run` without credentials: every provider routed to the mock upstream."""
    env = {name: "" for name in PROVIDER_KEY_ENVS}
    proc, url = start_gateway(GATEWAY_MOCK_UPSTREAM_URL=mock_upstream_url, GATEWAY_MAX_BODY_BYTES="8388608", **env)
    try:
        yield url
    finally:
        stop_process(proc)


@contextlib.contextmanager
def cache_entry_drain(every: float = 0.2) -> Iterator[None]:
    """What `make run`'s Celery beat does for the response cache: insert queued entries, repeatedly."""
    stop = threading.Event()

    def drain() -> None:
        try:
            while not stop.wait(every):
                with contextlib.suppress(Exception):  # an entry of a test whose data is gone meanwhile
                    entry_queue.drain()
        finally:
            connections.close_all()

    thread = threading.Thread(target=drain, name="cache-entry-drain", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@pytest.fixture(scope="module")
def shared_gateway(django_db_setup: None, django_db_blocker: object, mock_upstream_url: str) -> Iterator[str]:
    with seeded_gateway(mock_upstream_url) as url, cache_entry_drain():
        yield url


@pytest.fixture
def gateway(example: Example, request: pytest.FixtureRequest, mock_upstream_url: str) -> Iterator[str]:
    """The shared gateway, or a fresh one for examples that write through the management API: those
    write admin history rows, and a process that outlived a test's database flush still holds the
    content type ids the flush renumbered (a foreign-key error on the audit row)."""
    if "/api/" not in example.body:
        yield request.getfixturevalue("shared_gateway")
        return
    with seeded_gateway(mock_upstream_url) as url:
        yield url


@pytest.fixture
def credentials() -> dict[str, str]:
    """The seeded defaults, an API key made as the README makes one, and a superuser's personal token."""
    from tenants.tokens import personal_token_create

    call_command("seed_defaults", stdout=io.StringIO())
    out = io.StringIO()
    call_command("create_api_key", tenant="acme", team="platform", name="readme", stdout=out)
    admin = get_user_model().objects.create_superuser("readme-admin", "admin@example.com", "readme-password")
    token = personal_token_create(user=admin, name="readme")
    return {"KEY": out.getvalue().strip(), "TOKEN": token.secret}


def run_example(example: Example, *, gateway: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = example.script(base_url=gateway, python=sys.executable, manage_py=str(BASE_DIR / "manage.py"))
    args = [sys.executable, "-c", script] if example.lang == "python" else ["bash", "-c", script]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_readme_example_runs(
    example: Example, gateway: str, credentials: dict[str, str], mock_upstream_url: str, tmp_path: Path
) -> None:
    env = server_env(**credentials, GATEWAY_MOCK_UPSTREAM_URL=mock_upstream_url)
    for name in PROVIDER_KEY_ENVS:
        env.pop(name, None)
    if not example.expect:
        # An example that shows no status must not hit an HTTP error: curl then exits 22.
        (tmp_path / ".curlrc").write_text("fail-with-body\n")
        env["CURL_HOME"] = str(tmp_path)
    result = run_example(example, gateway=gateway, cwd=tmp_path, env=env)
    shown = f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    assert result.returncode == 0, shown
    for text in example.expect:
        assert text.lower() in result.stdout.lower(), f"expected {text!r}\n{shown}"


# Commands no example runs, and why.
COMMANDS_WITHOUT_EXAMPLE = {
    "mock_upstream": "a server that runs until stopped; every example here runs against one started by this test",
}


def test_every_management_command_has_a_runnable_example() -> None:
    from tests.test_readme import project_commands

    ran = " ".join(e.body for e in EXAMPLES)
    missing = [c for c in project_commands() if c not in COMMANDS_WITHOUT_EXAMPLE and f"manage.py {c}" not in ran]
    assert missing == [], "give these commands a runnable README example: " + ", ".join(missing)
