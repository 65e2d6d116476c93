"""Guardrail: detection of destructive commands in answers, decisions, and the seed's security section."""

from __future__ import annotations

import json

import pytest

from routing.guardrail import ANNOTATED, BLOCKED, GuardrailResult, decide, refusal, scan_answer

WATCHED = ("rm", "sudo", "chmod")


def fenced(body: str, language: str = "bash") -> str:
    return f"Run this:\n```{language}\n{body}\n```\nDone."


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("rm -rf build/", ("rm",)),
        ("sudo rm -rf /", ("rm", "sudo")),
        ("cd /tmp && chmod 777 file", ("chmod",)),
        ("ls | xargs rm", ("rm",)),
        ("find . -name '*.pyc' -exec rm {} \\;", ("rm",)),
        ("echo $(rm -f a.txt)", ("rm",)),
        ("FOO=1 /bin/rm -r data", ("rm",)),
        ("timeout 5 sudo -u root make clean", ("sudo",)),
        ("bash -c 'rm -rf ~/cache'", ("rm",)),
        ("$ rm notes.txt", ("rm",)),
        ("make \\\n  && rm -r dist", ("rm",)),
        ("echo hello; ls -la", ()),
        ("# rm -rf / would be bad, do not run it\nls", ()),
        ("git commit -m 'confirm the alarm format'", ()),
        ("rmdir empty && chmodx", ()),
        ("npm run format && ./alarm --confirm", ()),
    ],
)
def test_it_reads_shell_in_code_blocks(body, expected):
    assert scan_answer(fenced(body), [], WATCHED) == expected


def test_it_finds_shell_calls_in_other_languages():
    python = 'import os, subprocess\nos.system("rm -rf /tmp/x")\nsubprocess.run(["sudo", "reboot"])\n'
    assert scan_answer(fenced(python, "python"), [], WATCHED) == ("rm", "sudo")
    node = "const { execSync } = require('child_process');\nexecSync('chmod -R 777 .');"
    assert scan_answer(fenced(node, "javascript"), [], WATCHED) == ("chmod",)
    harmless = 'def format(alarm):\n    rm = confirm(alarm)\n    print("rm is a command")\n'
    assert scan_answer(fenced(harmless, "python"), [], WATCHED) == ()


def test_it_reads_dockerfile_run_lines():
    assert scan_answer(fenced("FROM python:3.12\nRUN rm -rf /var/lib/apt/lists/*", "dockerfile"), [], WATCHED) == (
        "rm",
    )


def test_prose_and_inline_mentions_are_not_findings():
    text = "You could `rm -rf build` or use sudo, but the alarm format says to confirm first: rm -rf /."
    assert scan_answer(text, [], WATCHED) == ()


def test_it_reads_tool_call_arguments():
    bash = json.dumps({"command": "sudo chmod 600 ~/.ssh/id_rsa"})
    interpreter = json.dumps({"language": "shell", "code": "ls\nrm -r old/"})
    query = json.dumps({"query": "how to confirm the alarm format"})
    assert scan_answer("", [bash], WATCHED) == ("sudo", "chmod")
    assert scan_answer("", [interpreter, query], WATCHED) == ("rm",)
    assert scan_answer("", [query], WATCHED) == ()
    assert scan_answer("", ['{"command": "rm -rf /'], WATCHED) == ("rm",)  # truncated JSON: read raw


def test_it_reports_in_the_policy_order_and_ignores_an_empty_list():
    answer = fenced("chmod +x run.sh && sudo ./run.sh && rm run.sh")
    assert scan_answer(answer, [], ("sudo", "rm", "chmod")) == ("sudo", "rm", "chmod")
    assert scan_answer(answer, [], ()) == ()
    assert scan_answer(answer, [], ("RM ",)) == ("rm",)


def test_decisions_per_mode():
    assert decide("allow", ("rm",)) == GuardrailResult()
    assert decide("annotate", ()) == GuardrailResult()
    annotated = decide("annotate", ("rm", "sudo"))
    assert annotated.action == ANNOTATED and annotated.header == "annotated; commands=rm,sudo"
    assert decide("block", ("rm",)).action == BLOCKED
    assert "`rm`" in refusal(("rm",))


# -- the seed's security section ---------------------------------------------------------------


@pytest.mark.django_db
def test_security_and_mcp_sections_set_the_global_policies():
    from routing.config_file import config_import
    from routing.models import ConfigSection, GuardrailPolicy, RoutingPolicy

    text = (
        "routing: {strategy: cost_optimized}\n"
        "mcp: {code_mode: true, normalize_output: true}\n"
        "security: {require_confirmation_for: [rm, sudo, chmod], sandbox: true}\n"
    )
    report = config_import(text=text)

    guard = GuardrailPolicy.objects.get(tenant=None)
    assert (guard.mode, guard.commands) == ("annotate", ["rm", "sudo", "chmod"])
    assert RoutingPolicy.objects.get(tenant=None).code_mode is True
    assert set(ConfigSection.objects.filter(applied=True).values_list("name", flat=True)) >= {"mcp", "security"}
    assert not {"mcp", "security"} & set(report.pending_sections)

    config_import(text="security: {require_confirmation_for: [rm], mode: block}\nmcp: {code_mode: false}\n")
    guard.refresh_from_db()
    assert (guard.mode, guard.commands) == ("block", ["rm"])
    assert RoutingPolicy.objects.get(tenant=None).code_mode is False


@pytest.mark.django_db
def test_security_section_errors_name_the_key_and_change_nothing():
    from routing.config_file import ConfigError, config_import
    from routing.models import GuardrailPolicy

    with pytest.raises(ConfigError, match=r"security.require_confirmation_for.*list of command names"):
        config_import(text="security: {require_confirmation_for: rm}\n")
    with pytest.raises(ConfigError, match=r"security.mode.*allow, annotate, block"):
        config_import(text="security: {require_confirmation_for: [rm], mode: loud}\n")
    with pytest.raises(ConfigError, match=r"mcp.codemode.*unknown key"):
        config_import(text="mcp: {codemode: true}\n")
    assert not GuardrailPolicy.objects.exists()


@pytest.mark.django_db
def test_seed_defaults_keep_an_existing_guardrail_policy():
    from routing.config_file import config_seed_defaults
    from routing.models import GuardrailPolicy

    config_seed_defaults()
    guard = GuardrailPolicy.objects.get(tenant=None)
    assert (guard.mode, guard.commands) == ("annotate", ["rm", "sudo", "chmod"])
    GuardrailPolicy.objects.filter(pk=guard.pk).update(mode="block", commands=["rm"])
    config_seed_defaults()
    guard.refresh_from_db()
    assert (guard.mode, guard.commands) == ("block", ["rm"])


# -- through the gateway ---------------------------------------------------------------------------

DANGEROUS = "Clean first:\n```bash\nsudo rm -rf build/\n```\nThen rebuild."


def _reply(text: str) -> str:
    from urllib.parse import quote

    return f"[[mock: reply={quote(text, safe='')}]]"


@pytest.fixture
def guarded(mock_upstream_url: str, gateway_url: str):
    """A key whose tenant has a guardrail policy; returns (set_mode, openai client, raw http headers)."""
    import openai

    from routing.models import GuardrailPolicy
    from tests.factories import make_key, make_model, make_provider, make_team

    provider = make_provider(f"{mock_upstream_url}/v1", name="mockai")
    make_model(provider, name="g-m", upstream_model="g-1")
    team = make_team()
    policy = GuardrailPolicy.objects.create(tenant=team.tenant, mode="annotate", commands=["rm", "sudo"])
    secret = make_key(team)[1]
    headers = {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store"}
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=secret, max_retries=0, default_headers=headers)

    def set_mode(mode: str) -> None:
        policy.mode = mode
        policy.save()

    return set_mode, client, headers


def _ask(client, text: str):
    return client.chat.completions.with_raw_response.create(
        model="g-m", messages=[{"role": "user", "content": f"how do I rebuild? {_reply(text)}"}]
    )


def _sse(gateway_url: str, headers: dict[str, str], text: str) -> tuple[dict[str, str], str]:
    import httpx2

    body = {"model": "g-m", "stream": True, "messages": [{"role": "user", "content": f"rebuild? {_reply(text)}"}]}
    response = httpx2.post(f"{gateway_url}/v1/chat/completions", json=body, headers=headers, timeout=30)
    return dict(response.headers), response.text


def _streamed_text(raw: str) -> tuple[str, list[str]]:
    pieces, finishes = [], []
    for line in raw.splitlines():
        if line.startswith("data: {"):
            choice = (json.loads(line[6:]).get("choices") or [{}])[0]
            pieces.append((choice.get("delta") or {}).get("content") or "")
            if choice.get("finish_reason"):
                finishes.append(choice["finish_reason"])
    return "".join(pieces), finishes


@pytest.mark.django_db(transaction=True)
def test_annotate_mode_marks_whole_and_streamed_answers(guarded, gateway_url, drained_events):
    _, client, headers = guarded
    raw = _ask(client, DANGEROUS)
    assert raw.parse().choices[0].message.content == DANGEROUS
    assert raw.headers["x-gateway-guardrail"] == "annotated; commands=rm,sudo"
    [event] = drained_events(1, request_id=raw.headers["x-request-id"])
    assert event.guardrail == "annotated" and event.route_reason["guardrail"]["commands"] == ["rm", "sudo"]

    response_headers, body = _sse(gateway_url, headers, DANGEROUS)
    assert "x-gateway-guardrail" not in response_headers  # unknown when the headers left: see the comment
    assert _streamed_text(body)[0] == DANGEROUS
    assert ": x-gateway-guardrail=annotated; commands=rm,sudo\n" in body
    assert body.index(": x-gateway-guardrail") < body.index("data: [DONE]")
    [event] = drained_events(1, request_id=response_headers["x-request-id"])
    assert event.guardrail == "annotated"


@pytest.mark.django_db(transaction=True)
def test_block_mode_replaces_the_answer_with_a_refusal(guarded, gateway_url, drained_events):
    set_mode, client, headers = guarded
    set_mode("block")
    raw = _ask(client, DANGEROUS)
    choice = raw.parse().choices[0]
    assert choice.finish_reason == "content_filter" and "withheld" in choice.message.content
    assert "rm -rf" not in choice.message.content
    assert raw.headers["x-gateway-guardrail"] == "blocked; commands=rm,sudo"

    response_headers, body = _sse(gateway_url, headers, DANGEROUS)
    text, finishes = _streamed_text(body)
    assert "withheld" in text and "rm -rf" not in body and finishes == ["content_filter"]
    assert response_headers["x-gateway-guardrail"] == "blocked; commands=rm,sudo"  # held, so known in time
    [event] = drained_events(1, request_id=response_headers["x-request-id"])
    assert event.guardrail == "blocked" and event.completion_tokens > 0  # the withheld answer is billed

    safe_headers, safe = _sse(gateway_url, headers, "Run `make` again; it is safe.")
    assert _streamed_text(safe) == ("Run `make` again; it is safe.", ["stop"])
    assert "x-gateway-guardrail" not in safe_headers


@pytest.mark.django_db(transaction=True)
def test_tool_call_arguments_are_checked(guarded, drained_events):
    set_mode, client, _ = guarded
    set_mode("block")
    tools = [
        {
            "type": "function",
            "function": {
                "name": "run_shell",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            },
        }
    ]
    completion = client.chat.completions.create(
        model="g-m", messages=[{"role": "user", "content": "rm -rf ./cache please [[mock: tool]]"}], tools=tools
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter" and not choice.message.tool_calls


@pytest.mark.django_db(transaction=True)
def test_allow_mode_and_harmless_answers_pass_untouched(guarded):
    set_mode, client, _ = guarded
    harmless = _ask(client, "Set the alarm format, then confirm:\n```bash\nnpm run format\n```")
    assert "x-gateway-guardrail" not in harmless.headers
    set_mode("allow")
    allowed = _ask(client, DANGEROUS)
    assert allowed.parse().choices[0].message.content == DANGEROUS
    assert "x-gateway-guardrail" not in allowed.headers
