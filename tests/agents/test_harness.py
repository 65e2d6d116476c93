"""The conformance harness itself: missing CLIs skip with the reason, and fail under CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents import harness


def test_a_missing_cli_is_skipped_with_the_reason_and_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness, "AGENTS_BIN", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        harness.agent_binary("codex")
    assert "codex" in str(skipped.value) or "npm" in str(skipped.value)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run under CI"):
        harness.agent_binary("codex")


def test_the_mock_marker_round_trips_arguments() -> None:
    from providers.mock_upstream.directives import parse_directives

    marker = harness.mock_marker("Write", {"file_path": "/tmp/a b.txt", "content": "x]y"}, "done, really")
    directives = parse_directives([marker], "m")
    assert directives.call == "Write" and directives.reply == "done, really"
    assert directives.args is not None and '"/tmp/a b.txt"' in directives.args
