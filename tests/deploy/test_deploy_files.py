"""The compose file, the Dockerfile and the systemd units name only commands and settings that exist.

No container engine runs where these tests run (the README's "Production" section says so), so the
image is not built here: these tests check every name the files use against the code instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import resolve

from gateway_platform.roles import ROLE_SETTINGS, ROLES, check_environment, command_for, migrate_steps
from tests.deploy.deploy_files import (
    BASE_DIR,
    compose,
    dockerfile_env,
    dockerfile_instructions,
    documented_settings,
    env_file,
    source_text,
    systemd_units,
)

GATEWAY_SERVICES = ("migrate", "web-1", "web-2", "worker", "beat")


def _interpolate(value: str) -> str:
    """What compose makes of ``${NAME:-default}`` / ``${NAME:?message}`` with nothing set (``?`` -> a value)."""
    value = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z0-9_]+:\?[^}]*\}", "set-by-operator", value)


def _known_setting(name: str, source: str) -> bool:
    return name in documented_settings() and (name in source or name in ROLE_SETTINGS)


def test_the_readme_table_documents_every_role_setting():
    missing = set(ROLE_SETTINGS) - documented_settings()
    assert not missing, f"settings read by gateway_platform.roles but not in the README table: {missing}"


def test_compose_runs_each_role_of_the_topology_with_existing_settings():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", *GATEWAY_SERVICES}
    source = source_text()
    roles = {}
    for name in GATEWAY_SERVICES:
        service = services[name]
        (role,) = service["command"]
        assert role in ROLES
        roles[name] = role
        env = {key: _interpolate(str(value)) for key, value in service["environment"].items()}
        unknown = [key for key in env if not _known_setting(key, source)]
        assert not unknown, f"{name}: settings nobody reads or documents: {unknown}"
        check_environment(role, env)  # production mode: external URLs and a secret key are given
        if role == "migrate":
            assert migrate_steps(env)[0] == ("migrate", "--noinput")
        else:
            assert command_for(role, env, sys.executable)
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert sorted(roles.values()) == ["beat", "migrate", "serve", "serve", "worker"]
    for name in ("web-1", "web-2", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"


def test_compose_postgres_has_pgvector_and_redis_persists_without_eviction():
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    command = services["redis"]["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=False))
    assert flags["--appendonly"] == "yes"
    assert flags["--maxmemory-policy"] == "noeviction"


def test_the_dockerfile_runs_the_roles_and_sets_only_existing_settings():
    instructions = dockerfile_instructions()
    entrypoint = next(args for ins, args in instructions if ins == "ENTRYPOINT")
    cmd = [args for ins, args in instructions if ins == "CMD"][-1]
    assert entrypoint == '["python", "-m", "gateway_platform"]'
    assert cmd.strip('[]"') in ROLES
    source = source_text()
    env = dockerfile_env()
    unknown = [
        name
        for name in env
        if name not in ("PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE") and not _known_setting(name, source)
    ]
    assert not unknown, f"Dockerfile ENV names nobody reads or documents: {unknown}"
    for ins, args in instructions:
        if ins == "COPY" and not args.startswith("--from"):
            for source_path in args.split()[:-1]:
                assert (BASE_DIR / source_path).exists(), f"COPY names a missing path: {source_path}"
    healthcheck = next(args for ins, args in instructions if ins == "HEALTHCHECK")
    assert "/live" in healthcheck
    assert resolve("/live")


def test_the_dockerignore_keeps_every_app_in_the_image():
    ignored = {
        line.strip().rstrip("/")
        for line in (BASE_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    needed = {app.split(".")[0] for app in settings.INSTALLED_APPS if (BASE_DIR / app.split(".")[0]).is_dir()}
    needed |= {"gateway_platform", "templates", "static", "manage.py", "requirements"}
    assert not needed & ignored
    # Everything the runtime imports is in the image: nothing under tests/ or bench/.
    assert "from tests" not in source_text() and "from bench" not in source_text()


def test_systemd_units_start_the_roles_with_existing_settings():
    units = systemd_units()
    assert set(units) == {
        "gateway-migrate.service",
        "gateway-web@.service",
        "gateway-worker.service",
        "gateway-beat.service",
    }
    source = source_text()
    started = {}
    for name, keys in units.items():
        (exec_start,) = keys["ExecStart"]
        argv = exec_start.split()
        assert argv[1:3] == ["-m", "gateway_platform"]
        started[name] = argv[3]
        for assignment in keys.get("Environment", []):
            key = assignment.partition("=")[0]
            assert _known_setting(key, source), f"{name}: {key} is read or documented nowhere"
        assert keys["EnvironmentFile"] == ["/etc/gateway/gateway.env"]
    assert sorted(started.values()) == ["beat", "migrate", "serve", "worker"]
    example = env_file(BASE_DIR / "deploy" / "systemd" / "gateway.env.example")
    unknown = [key for key in example if not _known_setting(key, source) and key != "DEEPSEEK_API_KEY"]
    assert not unknown, f"gateway.env.example names unknown settings: {unknown}"
    check_environment("serve", example)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_every_directive_of_the_units(tmp_path: Path):
    for unit in (BASE_DIR / "deploy" / "systemd").glob("*.service"):
        shutil.copy(unit, tmp_path / unit.name)
    shutil.copy(tmp_path / "gateway-web@.service", tmp_path / "gateway-web@8001.service")
    names = [str(p) for p in sorted(tmp_path.glob("*.service")) if p.name != "gateway-web@.service"]
    result = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True, timeout=60)
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        # The virtualenv of /opt/gateway does not exist on the test machine; anything else is a defect.
        if line.strip() and "is not executable" not in line
    ]
    assert not problems, problems
