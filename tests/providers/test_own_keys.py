"""Bring your own key: a tenant's provider credentials, encrypted at rest and used for that tenant only."""

from __future__ import annotations

import hashlib
import io

import httpx2
import openai
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from rest_framework.test import APIClient

from providers.credentials import provider_config
from providers.models import Provider
from providers.secrets import decrypt
from routing.config_file import config_export
from tests.factories import make_key, make_model, make_team, make_tier
from tests.tenants.world import build_world

SECRET = "sk-acme-own-contract-0123456789"


def test_the_key_is_stored_encrypted_and_rotates(settings, db):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.GATEWAY = {**settings.GATEWAY, "ENCRYPTION_KEYS": [old]}
    provider = Provider(name="own", kind="openai", base_url="https://api.example/v1", tenant=make_team("acme").tenant)
    provider.set_api_key(SECRET)
    provider.save()
    stored = Provider.objects.values_list("api_key_encrypted", flat=True).get(pk=provider.pk)
    assert SECRET not in stored and decrypt(stored) == SECRET
    settings.GATEWAY = {**settings.GATEWAY, "ENCRYPTION_KEYS": [new, old]}
    out = io.StringIO()
    call_command("rotate_provider_keys", stdout=out)
    assert "Re-encrypted 1" in out.getvalue()
    settings.GATEWAY = {**settings.GATEWAY, "ENCRYPTION_KEYS": [new]}  # the old key is gone
    provider.refresh_from_db()
    assert provider_config(provider).api_key == SECRET
    settings.GATEWAY = {**settings.GATEWAY, "ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}  # a wrong key
    assert provider_config(provider).api_key is None  # a 502 upstream_auth_failed later, not a crash now


@pytest.mark.django_db
def test_a_tenant_admin_adds_an_own_provider_whose_key_is_never_shown_or_exported():
    world = build_world()
    admin = APIClient()
    admin.force_authenticate(world.users["tenant_admin"])
    body = {"name": "acme-openai", "tenant": world.tenant.slug, "kind": "openai", "base_url": "https://api.example/v1"}
    created = admin.post("/api/providers/", {**body, "api_key": SECRET}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["credential_set"] is True and "api_key" not in created.json()
    model = admin.post("/api/models/", {"name": "acme-gpt", "provider": "acme-openai", "upstream_model": "gpt"})
    assert model.status_code == 201, model.json()
    replaced = admin.patch(f"/api/providers/{created.json()['id']}/", {"api_key": SECRET + "-2"}, format="json")
    assert replaced.status_code == 200 and decrypt(Provider.objects.get(name="acme-openai").api_key_encrypted) == (
        SECRET + "-2"
    )
    listing = admin.get("/api/providers/").content.decode() + admin.get("/api/models/").content.decode()
    assert SECRET not in listing and "acme-openai" in listing
    assert SECRET not in config_export() and "acme-openai" not in config_export()
    # Not for another tenant, and not a platform provider.
    foreign = {**body, "name": "x", "tenant": world.foreign_tenant.slug}
    assert admin.post("/api/providers/", foreign, format="json").status_code == 403
    assert admin.post("/api/providers/", {**body, "name": "y", "tenant": None}, format="json").status_code == 403
    outsider = APIClient()
    outsider.force_authenticate(world.users["owner"])
    assert outsider.get("/api/providers/").json()["results"] == []


@pytest.mark.django_db(transaction=True)
def test_a_tenants_own_key_serves_only_that_tenant(gateway_url, mock_upstream_url):
    acme, globex = make_team("acme"), make_team("globex")
    provider = Provider(name="acme-own", kind="openai", base_url=f"{mock_upstream_url}/v1", tenant=acme.tenant)
    provider.set_api_key(SECRET)
    provider.save()
    model = make_model(provider, name="acme-gpt", upstream_model="acme-upstream")
    make_tier("acme_tier", [model], tenant=acme.tenant)
    acme_client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(acme)[1], max_retries=0)
    globex_client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(globex)[1], max_retries=0)

    for name in ("acme-gpt", "acme_tier"):
        answer = acme_client.chat.completions.create(model=name, messages=[{"role": "user", "content": "mine"}])
        assert answer.choices[0].message.content == "Mock reply to: mine"
    events = [e for e in httpx2.get(f"{mock_upstream_url}/_mock/events").json() if e["model"] == "acme-upstream"]
    assert len(events) == 2
    assert {e["credential_sha256"] for e in events} == {hashlib.sha256(f"Bearer {SECRET}".encode()).hexdigest()}

    for name in ("acme-gpt", "acme-own:acme-gpt"):
        with pytest.raises(openai.BadRequestError) as caught:
            globex_client.chat.completions.create(model=name, messages=[{"role": "user", "content": "theirs?"}])
        assert caught.value.code == "model_not_found"
    assert "acme-gpt" not in {m.id for m in globex_client.models.list()}
    assert "acme-gpt" in {m.id for m in acme_client.models.list()}
