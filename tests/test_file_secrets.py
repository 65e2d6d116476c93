"""Secrets from files: every setting read with ``env_secret`` accepts ``NAME_FILE`` (Docker/Kubernetes secrets)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import BASE_DIR, server_env

PRINT = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SECRET_KEY); print(s.GATEWAY['METRICS_TOKEN']); print(s.EMAIL_HOST_PASSWORD); "
    "print(s.DATABASES['default']['NAME']); print(s.REDIS_URL)"
)


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRINT], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def test_secrets_are_read_from_the_files_named_by_name_file(tmp_path):
    env = server_env()
    files = {
        "DJANGO_SECRET_KEY": "a-secret-key-from-a-file-" + "x" * 40,
        "GATEWAY_METRICS_TOKEN": "scrape-from-file",
        "EMAIL_HOST_PASSWORD": "smtp-from-file",
        "DATABASE_URL": "postgresql://u:p@db.example:5432/from_file_db",
        "REDIS_URL": "redis://cache.example:6379/3",
    }
    for name, value in files.items():
        path = tmp_path / name.lower()
        path.write_text(value + "\n")  # the trailing newline editors and `echo` add is stripped
        env.pop(name, None)
        env[f"{name}_FILE"] = str(path)
    result = run(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        files["DJANGO_SECRET_KEY"],
        "scrape-from-file",
        "smtp-from-file",
        "from_file_db",
        "redis://cache.example:6379/3",
    ]


def test_an_unreadable_secret_file_stops_the_start_with_its_name(tmp_path):
    env = server_env(GATEWAY_METRICS_TOKEN_FILE=str(tmp_path / "missing"))
    result = run(env)
    assert result.returncode != 0
    assert "GATEWAY_METRICS_TOKEN_FILE=" in result.stderr and "cannot be read" in result.stderr
