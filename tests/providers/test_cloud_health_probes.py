"""Health probes of Azure OpenAI, Gemini and Bedrock providers against the mock upstream (the Celery task)."""

from __future__ import annotations

import pytest

from gateway_platform.redis_clients import sync_client
from providers import probes
from providers.adapters.base import ProviderConfig
from providers.adapters.bedrock import control_plane_url
from providers.mock_upstream.bedrock_format import MOCK_AWS_SECRET
from providers.models import ProviderHealth
from providers.tasks import probe_providers
from tests.factories import make_model, make_provider

pytestmark = pytest.mark.django_db

Status = ProviderHealth.Status


@pytest.fixture(autouse=True)
def _credentials(settings, monkeypatch) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "MOCK_UPSTREAM_URL": "", "CIRCUIT_FAILURES": 2}
    monkeypatch.setenv("PROBE_AZURE_KEY", "azure-key")
    monkeypatch.setenv("PROBE_GEMINI_KEY", "gemini-key")
    monkeypatch.setenv("PROBE_AWS", f"AKIDPROBE:{MOCK_AWS_SECRET}")
    monkeypatch.setenv("PROBE_AWS_EXPIRED", f"EXPIREDKEY:{MOCK_AWS_SECRET}")
    monkeypatch.setenv("PROBE_AWS_NOLIST", f"NOLISTKEY:{MOCK_AWS_SECRET}")
    monkeypatch.setenv("PROBE_AWS_WRONG", "AKIDPROBE:not-the-secret")


def cloud_provider(url: str, kind: str, name: str, key_env: str) -> None:
    fields = {"azure": {"api_version": "2024-10-21"}, "bedrock": {"region": "eu-central-1"}}.get(kind, {})
    provider = make_provider(url, kind=kind, name=name, api_key_env=key_env, **fields)
    make_model(provider, name=f"{name}-model")


def test_the_task_finds_azure_gemini_and_bedrock_healthy(mock_upstream_url):
    cloud_provider(mock_upstream_url, "azure", "probe-azure", "PROBE_AZURE_KEY")
    cloud_provider(mock_upstream_url, "gemini", "probe-gemini", "PROBE_GEMINI_KEY")
    cloud_provider(mock_upstream_url, "bedrock", "probe-bedrock", "PROBE_AWS")

    probe_providers.apply().get()

    healths = {h.provider.name: h for h in ProviderHealth.objects.select_related("provider")}
    assert {name: h.status for name, h in healths.items()} == {
        "probe-azure": Status.HEALTHY,
        "probe-gemini": Status.HEALTHY,
        "probe-bedrock": Status.HEALTHY,
    }
    assert all(h.latency_ms is not None and h.last_error == "" for h in healths.values())


def test_rejected_credentials_are_down_and_count_against_the_circuits(mock_upstream_url):
    cloud_provider(mock_upstream_url, "gemini", "nokey-gemini", "PROBE_UNSET_VARIABLE")
    cloud_provider(mock_upstream_url, "bedrock", "expired-bedrock", "PROBE_AWS_EXPIRED")
    cloud_provider(mock_upstream_url, "bedrock", "wrong-bedrock", "PROBE_AWS_WRONG")
    cloud_provider(mock_upstream_url, "azure", "nokey-azure", "PROBE_UNSET_VARIABLE")

    results = {r.provider: r for r in probes.probe_all()}

    assert {name: r.status for name, r in results.items()} == dict.fromkeys(results, Status.DOWN)
    assert "rejected the gateway's credentials" in results["expired-bedrock"].error
    for name in results:
        assert int(sync_client().hget(f"cb:{name}-model", "failures") or 0) == 1


def test_a_bedrock_key_that_may_not_list_models_is_degraded_not_down(mock_upstream_url):
    cloud_provider(mock_upstream_url, "bedrock", "nolist-bedrock", "PROBE_AWS_NOLIST")

    [result] = probes.probe_all()

    # Valid credentials without bedrock:ListFoundationModels: requests still work, so no circuit is fed.
    assert result.status == Status.DEGRADED and "ListFoundationModels" in result.error
    assert sync_client().hget("cb:nolist-bedrock-model", "failures") is None


def test_a_server_without_the_model_list_is_degraded(mock_upstream_url):
    cloud_provider(f"{mock_upstream_url}/nowhere", "gemini", "lost-gemini", "PROBE_GEMINI_KEY")

    [result] = probes.probe_all()

    # Up (it answered 404), but the probe cannot tell more: degraded, as for the other kinds.
    assert result.status == Status.DEGRADED and "rejected the request" in result.error


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (
            "https://bedrock-runtime.eu-central-1.amazonaws.com",
            "https://bedrock.eu-central-1.amazonaws.com/foundation-models",
        ),
        (
            "https://bedrock-runtime-fips.us-east-1.amazonaws.com/",
            "https://bedrock-fips.us-east-1.amazonaws.com/foundation-models",
        ),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/foundation-models"),
        ("https://proxy.example/aws", "https://proxy.example/aws/foundation-models"),
    ],
)
def test_the_bedrock_probe_asks_the_control_plane_beside_the_runtime(base_url: str, expected: str):
    provider = ProviderConfig(
        id=1,
        name="b",
        kind="bedrock",
        base_url=base_url,
        api_key=None,
        connect_timeout=1,
        read_timeout=1,
        total_timeout=1,
        max_connections=1,
    )
    assert control_plane_url(provider, "/foundation-models") == expected
