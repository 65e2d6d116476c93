"""``python -m gateway_platform serve|worker|beat|migrate``: validation, command lines, a real ``serve``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx2
import pytest

from gateway_platform.roles import RoleError, check_environment, command_for, migrate_steps, serve_options
from tests.conftest import BASE_DIR, free_port, server_env, stop_process, wait_for_http
from tests.factories import make_key, make_model, make_provider

PRODUCTION = {
    "DATABASE_URL": "postgresql://gateway:pw@db:5432/gateway",
    "REDIS_URL": "redis://redis:6379/0",
    "DJANGO_SECRET_KEY": "s3cret",
}


def test_it_refuses_embedded_servers_outside_local_mode():
    for missing in PRODUCTION:
        env = {k: v for k, v in PRODUCTION.items() if k != missing}
        with pytest.raises(RoleError, match=missing):
            check_environment("serve", env)
    check_environment("worker", PRODUCTION)
    check_environment("beat", {"GATEWAY_LOCAL": "1"})
    # Secrets may come from files.
    check_environment("migrate", {f"{k}_FILE": "/run/secrets/x" for k in PRODUCTION})


def test_it_rejects_unknown_roles_and_bad_values():
    with pytest.raises(RoleError, match="unknown role"):
        check_environment("web", PRODUCTION)
    with pytest.raises(RoleError, match="GATEWAY_LOCAL"):
        check_environment("serve", {"GATEWAY_LOCAL": "maybe"})
    for name, value in [("GATEWAY_WEB_WORKERS", "two"), ("GATEWAY_WEB_WORKERS", "0"), ("PORT", "-1")]:
        with pytest.raises(RoleError, match=name):
            serve_options({name: value})
    with pytest.raises(RoleError, match="GATEWAY_SERVER"):
        serve_options({"GATEWAY_SERVER": "gunicorn"})
    with pytest.raises(RoleError, match="one process per"):
        serve_options({"GATEWAY_SERVER": "daphne", "GATEWAY_WEB_WORKERS": "3"})


def test_serve_runs_uvicorn_workers_with_a_graceful_shutdown_bound():
    argv = command_for(
        "serve", {"GATEWAY_WEB_WORKERS": "3", "PORT": "9000", "GATEWAY_SHUTDOWN_GRACE_SECONDS": "12"}, "py"
    )
    assert argv[:4] == ["py", "-m", "uvicorn", "gateway_platform.asgi:application"]
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[argv.index("--port") + 1] == "9000"
    assert argv[argv.index("--timeout-graceful-shutdown") + 1] == "12"
    daphne = command_for("serve", {"GATEWAY_SERVER": "daphne", "GATEWAY_WEB_WORKERS": "1"}, "py")
    assert daphne[:3] == ["py", "-m", "daphne"] and daphne[-1] == "gateway_platform.asgi:application"


def test_worker_beat_and_migrate_steps():
    worker = command_for("worker", {"CELERY_CONCURRENCY": "4", "CELERY_LOG_LEVEL": "INFO"}, "py")
    assert worker[:6] == ["py", "-m", "celery", "-A", "gateway_platform", "worker"]
    assert worker[worker.index("--concurrency") + 1] == "4" and worker[worker.index("--loglevel") + 1] == "INFO"
    beat = command_for("beat", {"GATEWAY_BEAT_SCHEDULE_FILE": "/x/schedule"}, "py")
    assert beat[5] == "beat" and beat[-2:] == ["--schedule", "/x/schedule"]
    assert migrate_steps({}) == [("migrate", "--noinput"), ("seed_defaults",)]
    assert migrate_steps(
        {"GATEWAY_SEED_DEFAULTS": "0", "GATEWAY_CONFIG_FILE": "/etc/gw.yaml", "GATEWAY_ADMIN_PASSWORD": "pw"}
    ) == [("migrate", "--noinput"), ("import_config", "/etc/gw.yaml"), ("ensure_admin",)]


def test_the_command_refuses_to_start_without_urls(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_VAR_DIR": str(tmp_path / "var")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway_platform", "serve"], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "DATABASE_URL, REDIS_URL, DJANGO_SECRET_KEY not set" in result.stderr
    assert not (tmp_path / "var").exists()  # no embedded server was started


def _start_serve(**extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = server_env(**{"PORT": str(port), "GATEWAY_WEB_WORKERS": "2", "DJANGO_SECRET_KEY": "x" * 50, **extra})
    env.pop("GATEWAY_LOCAL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "gateway_platform", "serve"], cwd=BASE_DIR, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/live", proc=proc)
    return proc, url


@pytest.mark.django_db(transaction=True)
def test_serve_lets_an_open_stream_finish_on_sigterm(mock_upstream_url):
    make_model(make_provider(f"{mock_upstream_url}/v1", name="mockai"), name="mock-small")
    _, secret = make_key()
    proc, url = _start_serve()
    lines: list[str] = []
    first_chunk = threading.Event()

    def read_stream() -> None:
        body = {
            "model": "mock-small",
            "stream": True,
            "messages": [{"role": "user", "content": "count [[mock: words=12 tps=6]]"}],
        }
        with httpx2.stream(
            "POST", f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"}, json=body, timeout=30
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    lines.append(line)
                    first_chunk.set()

    try:
        plain = httpx2.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "mock-small", "messages": [{"role": "user", "content": "hello"}]},
        )
        assert plain.status_code == 200
        reader = threading.Thread(target=read_stream)
        reader.start()
        assert first_chunk.wait(20)
        proc.send_signal(signal.SIGTERM)
        reader.join(30)
        assert proc.wait(30) == 0
    finally:
        stop_process(proc)
    assert lines[-1] == "data: [DONE]"
    text = "".join(
        (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or "" for line in lines[:-1]
    )
    assert len(text.split()) >= 12


@pytest.mark.django_db(transaction=True)
def test_serve_cancels_what_is_still_open_after_the_grace_period(mock_upstream_url):
    make_model(make_provider(f"{mock_upstream_url}/v1", name="mockai"), name="mock-small")
    _, secret = make_key()
    proc, url = _start_serve(GATEWAY_SHUTDOWN_GRACE_SECONDS="1", GATEWAY_WEB_WORKERS="1")
    outcome: list[object] = []

    def read_stream() -> None:
        body = {
            "model": "mock-small",
            "stream": True,
            "messages": [{"role": "user", "content": "wait [[mock: ttft=0 hang=1]]"}],
        }
        try:
            with httpx2.stream(
                "POST", f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"}, json=body
            ) as response:
                outcome.append(response.status_code)
                for _ in response.iter_lines():
                    pass
            outcome.append("closed")
        except httpx2.HTTPError as exc:
            outcome.append(type(exc).__name__)

    try:
        reader = threading.Thread(target=read_stream, daemon=True)
        reader.start()
        wait_for_http(f"{url}/live")
        reader.join(3)  # the stream hangs: it is still open when the server is told to stop
        assert reader.is_alive()
        proc.send_signal(signal.SIGTERM)
        # The bound held: it did not wait for the hour the upstream would take. (A single uvicorn
        # process re-raises SIGTERM once shut down; the multi-process supervisor exits 0.)
        assert proc.wait(30) in (0, -signal.SIGTERM)
        reader.join(10)
        assert not reader.is_alive() and outcome
    finally:
        stop_process(proc)
