"""The production profile: `check --deploy` clean behind HTTPS, a Content-Security-Policy on every page."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import BASE_DIR, server_env

pytestmark = pytest.mark.django_db


def check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    environment = server_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60), DJANGO_ALLOWED_HOSTS="gateway.example.com", **env
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )


def test_check_deploy_is_clean_in_the_https_profile():
    result = check_deploy(DJANGO_HTTPS="1")
    assert result.returncode == 0, result.stdout + result.stderr
    # Without the profile the same check fails (HSTS, SSL redirect, secure cookies): the test can fail.
    plain = check_deploy(DJANGO_HTTPS="0")
    assert plain.returncode != 0 and "security.W004" in plain.stdout + plain.stderr


def test_every_page_carries_the_content_security_policy():
    admin = get_user_model().objects.create_superuser("csp-root", "r@example.com", "pw")
    client = Client()
    for path in ("/accounts/login/", "/admin/login/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    client.force_login(admin)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and "Content-Security-Policy" in docs
    # No inline script left for the policy to block: every <script> has a src.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", docs.content.decode())
