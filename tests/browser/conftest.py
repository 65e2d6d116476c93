"""Real headless Chromium (Debian's ``chromium``) driven by Playwright; no browser download.

``make test`` installs the package when it is missing; where it cannot be installed
the browser tests are skipped with the reason — except under ``CI=true``, where a
missing browser fails them: CI must not go green without having run them. The browser talks to the same Daphne
process (``gateway_url``) that serves ``/v1/``, ``/portal/`` and ``/admin/`` on the
test database, so these tests use ``django_db(transaction=True)``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def chromium_path() -> str | None:
    """Debian's chromium binary (``CHROMIUM_PATH`` overrides), or None when absent."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def running_in_ci() -> bool:
    """``CI`` set to a true value, as GitHub Actions, GitLab CI and most others do."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip locally; fail under CI, where a skipped browser test would read as a pass."""
    if running_in_ci():
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session."""
    path = chromium_path()
    if path is None:
        skip_or_fail("Debian's chromium is not installed (`make test` installs it with apt-get when run as root)")
    try:
        from playwright import sync_api
    except ImportError:
        skip_or_fail("playwright is not installed (requirements/dev.txt)")
    # Playwright's sync API keeps its event loop "running" in this thread between calls, which
    # Django's async-safety check takes for async code; the ORM calls in these tests are synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_api.sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def gateway_url(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    """A gateway process of this test's own.

    The flush after each transactional test re-creates content types under new ids; a
    server process kept for the session has the old ids cached, and the portal's audit log
    (admin LogEntry rows) would then violate their foreign key in the next browser test.
    """
    from tests.conftest import start_gateway, stop_process

    proc, url = start_gateway()
    yield url
    stop_process(proc)


@pytest.fixture
def screenshot() -> Callable[[object, str], Path]:
    """Save a full-page screenshot of ``page`` as ``test-artifacts/screenshots/NAME.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: object, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path

    return take
