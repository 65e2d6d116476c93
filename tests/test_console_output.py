"""What a human sees in a terminal: console log lines, the `make run` banner, quiet commands."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

from gateway_platform import launcher
from gateway_platform.logging import ConsoleFormatter, request_id_var, use_colour
from tests.conftest import BASE_DIR, server_env


def record(message: str, level: int = logging.INFO, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("billing.usage", level, __file__, 1, message, (), exc_info)
    rec.__dict__.update(extra)
    return rec


def test_a_console_line_has_time_level_logger_message_and_the_extra_fields():
    rec = record("drained", batch=3, stream="usage events", request_id="ab12")
    line = ConsoleFormatter(colour=False).format(rec)
    assert line.endswith('INFO    billing.usage  drained  batch=3 stream="usage events" request_id=ab12')
    assert "\033[" not in line


def test_an_event_stays_one_line_even_with_a_traceback_or_newlines():
    line = ConsoleFormatter(colour=False).format(record("two\nlines", logging.ERROR, exc=True, request_id="-"))
    assert "\n" not in line
    assert "two\\nlines" in line and "ValueError: boom" in line
    assert "request_id" not in line  # "-" means outside a request: not worth a field


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(Tty()) and not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Tty())
    coloured = ConsoleFormatter(colour=True).format(record("x", logging.WARNING))
    assert "\033[33mWARNING" in coloured


def test_the_settings_pick_the_console_formatter_only_when_asked():
    from django.conf import settings

    formatters = settings.LOGGING["formatters"]
    assert formatters["console"]["()"] == "gateway_platform.logging.ConsoleFormatter"
    assert formatters["json"]["()"] == "pythonjsonlogger.json.JsonFormatter"
    request_id_var.set("-")


def test_the_make_run_banner_ends_with_the_next_three_commands():
    text = launcher.next_steps("http://127.0.0.1:8000")
    lines = text.strip().splitlines()
    assert lines[0] == lines[-1] == launcher.BANNER
    steps = "\n".join(lines[-9:])
    assert "1. Create a key" in steps and "manage.py create_api_key --tenant demo --team dev --name laptop" in steps
    assert "2. Send a request" in steps and "curl http://127.0.0.1:8000/v1/chat/completions" in steps
    assert "3. Point your IDE at base URL http://127.0.0.1:8000/v1" in steps


@pytest.mark.django_db(transaction=True)
def test_create_api_key_in_a_shell_prints_the_secret_and_nothing_else():
    # The production log format and level: django-axes used to log an INFO banner on stderr here.
    env = server_env(LOG_FORMAT="json", LOG_LEVEL="INFO")
    command = [sys.executable, "manage.py", "create_api_key", "--tenant", "acme", "--team", "web", "--name", "sh"]
    result = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("gw-")
