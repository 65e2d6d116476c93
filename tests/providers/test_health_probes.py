"""Provider health probes against real servers, their circuit feeding, the task, and the admin views."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import UsageEvent
from gateway_platform.health import CELERY_HEARTBEAT_KEY
from gateway_platform.redis_clients import sync_client
from providers import circuit, probes
from providers.credentials import provider_config
from providers.models import Provider, ProviderHealth
from providers.tasks import heartbeat, probe_providers
from tests.conftest import free_port
from tests.factories import make_model, make_provider

pytestmark = pytest.mark.django_db

Status = ProviderHealth.Status


@pytest.fixture(autouse=True)
def _no_mock_override(settings) -> None:
    """Providers go where their base_url says unless a test turns the override on."""
    settings.GATEWAY = {**settings.GATEWAY, "MOCK_UPSTREAM_URL": ""}


@pytest.fixture
def fast_circuits(settings) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "CIRCUIT_FAILURES": 2, "CIRCUIT_RESET_SECONDS": 30.0}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def mock_providers(url: str) -> list[Provider]:
    return [
        make_provider(f"{url}/v1", kind="openai", name="probe-openai"),
        make_provider(url, kind="anthropic", name="probe-anthropic"),
        make_provider(url, kind="ollama", name="probe-ollama"),
    ]


def dead_provider() -> Provider:
    return make_provider(f"http://127.0.0.1:{free_port()}/v1", name="dead")


def failures(deployment: str) -> int:
    return int(sync_client().hget(f"cb:{deployment}", "failures") or 0)


# --------------------------------------------------------------------------- probes


def test_providers_of_every_kind_answering_the_mock_are_healthy(mock_upstream_url):
    providers = mock_providers(mock_upstream_url)
    results = probes.probe_all()
    assert {r.provider: r.status for r in results} == {p.name: Status.HEALTHY for p in providers}
    for provider in providers:
        health = ProviderHealth.objects.get(provider=provider)
        assert health.status == Status.HEALTHY
        assert health.latency_ms is not None and health.latency_ms < probes.SLOW_PROBE_MS
        assert health.last_error == "" and health.consecutive_failures == 0
        assert health.checked_at is not None and timezone.now() - health.checked_at < timedelta(seconds=30)


def test_a_provider_on_a_closed_port_is_down_and_opens_its_models_circuits(fast_circuits):
    provider = dead_provider()
    a, b = make_model(provider, name="dead-a"), make_model(provider, name="dead-b")
    disabled = make_model(provider, name="dead-off", enabled=False)

    [result] = probes.probe_all()
    assert result.status == Status.DOWN and result.latency_ms is None
    assert "unreachable" in result.error
    assert circuit.state_of(a.name) == circuit.CLOSED and failures(a.name) == 1

    probes.probe_all()
    health = ProviderHealth.objects.get(provider=provider)
    assert health.status == Status.DOWN and health.consecutive_failures == 2
    assert "unreachable" in health.last_error
    assert circuit.state_of(a.name) == circuit.OPEN and circuit.state_of(b.name) == circuit.OPEN
    assert circuit.state_of(disabled.name) == circuit.CLOSED and failures(disabled.name) == 0


def test_a_recovered_provider_resets_its_failure_count(mock_upstream_url):
    provider = make_provider(f"{mock_upstream_url}/v1")
    ProviderHealth.objects.create(provider=provider, status=Status.DOWN, consecutive_failures=4, last_error="x")
    probes.probe_all()
    health = ProviderHealth.objects.get(provider=provider)
    assert (health.status, health.consecutive_failures, health.last_error) == (Status.HEALTHY, 0, "")


def test_a_silent_provider_times_out_quickly(silent_port, monkeypatch):
    monkeypatch.setattr(probes, "PROBE_READ_SECONDS", 0.5)
    make_provider(f"http://127.0.0.1:{silent_port}", kind="ollama", connect_timeout=0.5)
    started = time.monotonic()
    [result] = probes.probe_all()
    # The provider's own read timeout is the default (minutes): only the probe's cap ends it this soon.
    # A wide bound (the cap on the whole probe), not a tight timing assertion.
    assert time.monotonic() - started < probes.PROBE_MAX_SECONDS
    assert result.status == Status.DOWN and "did not answer in time" in result.error


def test_probe_timeouts_are_capped():
    config = provider_config(make_provider("http://127.0.0.1:1/v1", connect_timeout=60, read_timeout=600))
    capped = probes.probe_config(config)
    assert capped.connect_timeout == probes.PROBE_MAX_SECONDS
    assert capped.read_timeout == probes.PROBE_READ_SECONDS
    assert capped.total_timeout == probes.PROBE_MAX_SECONDS


def test_a_missing_model_list_endpoint_is_degraded_and_spares_the_circuits(mock_upstream_url, fast_circuits):
    provider = make_provider(f"{mock_upstream_url}/nowhere")
    model = make_model(provider)
    for _ in range(3):
        [result] = probes.probe_all()
    assert result.status == Status.DEGRADED and "404" in result.error
    assert ProviderHealth.objects.get(provider=provider).consecutive_failures == 0
    assert circuit.state_of(model.name) == circuit.CLOSED and failures(model.name) == 0


def test_probes_use_the_gateway_config_path_with_the_mock_override(mock_upstream_url, settings, monkeypatch):
    settings.GATEWAY = {**settings.GATEWAY, "MOCK_UPSTREAM_URL": mock_upstream_url}
    without_key = dead_provider()
    monkeypatch.setenv("PROBE_TEST_KEY", "sk-very-secret-value")
    with_key = make_provider(f"http://127.0.0.1:{free_port()}/v1", name="keyed", api_key_env="PROBE_TEST_KEY")
    results = {r.provider: r for r in probes.probe_all()}
    assert results[without_key.name].status == Status.HEALTHY  # sent to the mock, as the gateway would
    assert results[with_key.name].status == Status.DOWN  # has a credential: its real base_url
    assert "sk-very-secret-value" not in ProviderHealth.objects.get(provider=with_key).last_error


def test_errors_are_scrubbed_of_the_credential_and_short(monkeypatch):
    monkeypatch.setenv("PROBE_TEST_KEY", "sk-very-secret-value")
    config = provider_config(make_provider("http://127.0.0.1:1/v1", api_key_env="PROBE_TEST_KEY"))
    text = probes.scrub("Incorrect API key provided: sk-very-secret-value " + "x" * 1000, config)
    assert "sk-very-secret-value" not in text and "***" in text
    assert len(text) == probes.ERROR_MAX_CHARS


def test_probe_all_can_be_limited_and_skips_disabled_providers(mock_upstream_url):
    first, second = make_provider(f"{mock_upstream_url}/v1"), make_provider(f"{mock_upstream_url}/v1")
    make_provider(f"{mock_upstream_url}/v1", enabled=False)
    assert [r.provider for r in probes.probe_all(provider_ids=[second.pk])] == [second.name]
    assert {r.provider for r in probes.probe_all()} == {first.name, second.name}


# --------------------------------------------------------------------------- circuit feeding


def open_circuit(name: str) -> None:
    while circuit.record_failure_sync(name) != circuit.OPEN:
        pass


def test_a_successful_probe_never_closes_a_circuit_inside_its_open_window(mock_upstream_url, fast_circuits):
    model = make_model(make_provider(f"{mock_upstream_url}/v1"))
    open_circuit(model.name)
    probes.probe_all()
    assert circuit.state_of(model.name) == circuit.OPEN


def test_a_successful_probe_closes_a_circuit_past_its_open_window(mock_upstream_url, settings):
    settings.GATEWAY = {**settings.GATEWAY, "CIRCUIT_FAILURES": 1, "CIRCUIT_RESET_SECONDS": 0.2}
    model = make_model(make_provider(f"{mock_upstream_url}/v1"))
    open_circuit(model.name)
    time.sleep(0.3)
    probes.probe_all()
    assert circuit.state_of(model.name) == circuit.CLOSED


def test_a_successful_probe_closes_a_half_open_circuit(mock_upstream_url):
    model = make_model(make_provider(f"{mock_upstream_url}/v1"))
    sync_client().hset(f"cb:{model.name}", mapping={"state": circuit.HALF_OPEN, "probe_at": time.time()})
    probes.probe_all()
    assert circuit.state_of(model.name) == circuit.CLOSED


def test_a_successful_probe_leaves_a_closed_circuits_failures_alone(mock_upstream_url):
    model = make_model(make_provider(f"{mock_upstream_url}/v1"))
    circuit.record_failure_sync(model.name)
    probes.probe_all()
    assert circuit.state_of(model.name) == circuit.CLOSED and failures(model.name) == 1


# --------------------------------------------------------------------------- Celery tasks


def test_the_probe_task_runs_through_celery_and_beats_the_heart(mock_upstream_url, settings):
    provider = make_provider(f"{mock_upstream_url}/v1")
    client = sync_client()
    client.delete(CELERY_HEARTBEAT_KEY)
    result = probe_providers.apply()
    assert result.successful() and result.get() == {provider.name: Status.HEALTHY}
    assert ProviderHealth.objects.get(provider=provider).status == Status.HEALTHY
    assert 0 < client.ttl(CELERY_HEARTBEAT_KEY) <= 3 * settings.GATEWAY_HEALTH_PROBE_SECONDS


def test_the_heartbeat_task_marks_the_worker_alive(settings):
    client = sync_client()
    client.delete(CELERY_HEARTBEAT_KEY)
    assert heartbeat.apply().successful()
    assert 0 < client.ttl(CELERY_HEARTBEAT_KEY) <= 3 * settings.GATEWAY_CELERY_HEARTBEAT_SECONDS


def test_beat_schedules_both_tasks(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"providers.tasks.probe_providers", "providers.tasks.heartbeat"} <= tasks


# --------------------------------------------------------------------------- admin


@pytest.fixture
def admin_client() -> Client:
    user = get_user_model().objects.create_superuser(f"root-{uuid.uuid4().hex[:8]}", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def usage_event(provider: str, *, status: int = 200, hops: int = 1, age: timedelta = timedelta(0)) -> UsageEvent:
    started = timezone.now() - age
    hop = {"provider": provider, "model": "m", "status": status, "error": ""}
    return UsageEvent.objects.create(
        request_id=uuid.uuid4().hex,
        endpoint="chat.completions",
        provider=provider,
        status_code=status,
        attempts=[hop] * hops,
        started_at=started,
        finished_at=started,
    )


def test_the_provider_changelist_shows_health_circuits_and_counts(admin_client, fast_circuits):
    provider = make_provider("http://127.0.0.1:1/v1", name="listed")
    broken = make_model(provider, name="listed-broken")
    make_model(provider, name="listed-fine")
    open_circuit(broken.name)
    ProviderHealth.objects.create(
        provider=provider, status=Status.DEGRADED, latency_ms=2345, last_error="slow answer", checked_at=timezone.now()
    )
    make_provider("http://127.0.0.1:1/v1", name="never-probed")
    usage_event("listed")
    usage_event("listed", status=502)
    usage_event("listed", hops=2)
    usage_event("listed", status=503, age=timedelta(hours=25))  # outside the window
    usage_event("other")

    response = admin_client.get("/admin/providers/provider/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "degraded" in html and "2345" in html and "slow answer" in html and "unknown" in html
    assert "listed-broken: <span" in html and ">open<" in html and ">closed<" in html
    assert '<td class="field-requests_24h">3</td>' in html
    assert '<td class="field-errors_24h">1</td>' in html
    assert '<td class="field-fallbacks_24h">1</td>' in html


def test_the_changelist_query_count_does_not_grow_with_providers(admin_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get("/admin/providers/provider/").status_code == 200
        return len(captured)

    make_model(make_provider("http://127.0.0.1:1/v1"))
    one = queries()
    for _ in range(4):
        provider = make_provider("http://127.0.0.1:1/v1")
        make_model(provider)
        ProviderHealth.objects.create(provider=provider, status=Status.HEALTHY)
        usage_event(provider.name)
    assert queries() == one


def test_the_provider_changelist_filters_by_health(admin_client):
    ProviderHealth.objects.create(provider=make_provider("http://127.0.0.1:1/v1", name="up"), status=Status.HEALTHY)
    ProviderHealth.objects.create(provider=make_provider("http://127.0.0.1:1/v1", name="gone"), status=Status.DOWN)
    response = admin_client.get("/admin/providers/provider/", {"health__status": "down"})
    assert response.status_code == 200
    assert [p.name for p in response.context["cl"].result_list] == ["gone"]


def test_the_reset_action_closes_the_selected_providers_circuits(admin_client, fast_circuits):
    provider = make_provider("http://127.0.0.1:1/v1")
    model = make_model(provider)
    other = make_model(make_provider("http://127.0.0.1:1/v1"))
    open_circuit(model.name)
    open_circuit(other.name)
    response = admin_client.post(
        "/admin/providers/provider/", {"action": "reset_circuits", "_selected_action": [provider.pk]}, follow=True
    )
    assert response.status_code == 200 and "Reset 1 circuit(s)." in response.content.decode()
    assert circuit.state_of(model.name) == circuit.CLOSED
    assert circuit.state_of(other.name) == circuit.OPEN


def test_the_probe_now_action_probes_the_selected_providers(admin_client, mock_upstream_url):
    selected = make_provider(f"{mock_upstream_url}/v1", name="probe-me")
    untouched = make_provider(f"{mock_upstream_url}/v1", name="leave-me")
    response = admin_client.post(
        "/admin/providers/provider/", {"action": "probe_now", "_selected_action": [selected.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "probe-me: healthy in" in response.content.decode().lower()  # the admin capitalises messages
    assert ProviderHealth.objects.get(provider=selected).status == Status.HEALTHY
    assert not ProviderHealth.objects.filter(provider=untouched).exists()


def test_the_model_changelist_shows_and_resets_circuits(admin_client, fast_circuits):
    model = make_model(make_provider("http://127.0.0.1:1/v1"), name="tripped")
    open_circuit(model.name)
    response = admin_client.get("/admin/providers/model/")
    assert response.status_code == 200 and ">open<" in response.content.decode()
    response = admin_client.post(
        "/admin/providers/model/", {"action": "reset_circuits", "_selected_action": [model.pk]}, follow=True
    )
    assert response.status_code == 200 and "Reset 1 circuit(s)." in response.content.decode()
    assert circuit.state_of(model.name) == circuit.CLOSED


@pytest.fixture
def slow_models_server() -> Iterator[str]:
    """A real HTTP server whose model list is correct but arrives after the slow-probe threshold."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(probes.SLOW_PROBE_MS / 1000 + 0.3)
            body = json.dumps({"object": "list", "data": [{"id": "slow-1", "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_slow_but_correct_answer_marks_the_provider_degraded(slow_models_server):
    provider = make_provider(slow_models_server, name="slowpoke")
    [result] = probes.probe_all()
    assert result.status == Status.DEGRADED
    health = ProviderHealth.objects.get(provider=provider)
    assert health.status == Status.DEGRADED
    assert health.latency_ms is not None and health.latency_ms >= probes.SLOW_PROBE_MS
    assert health.last_error.startswith("slow answer: ")
