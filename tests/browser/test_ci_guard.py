"""Under CI a missing browser fails the browser tests instead of skipping them (no silent green)."""

from __future__ import annotations

import pytest

from tests.browser import conftest


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("CHROMIUM_PATH", "/nonexistent/chromium")
    assert conftest.chromium_path() is None
    with pytest.raises(outcome):
        conftest.browser.__wrapped__().__next__()
