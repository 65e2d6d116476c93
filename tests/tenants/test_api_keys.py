"""API keys: secrets are strong, shown once and stored only as hashes."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from django.core.management import CommandError, call_command

from billing.models import Budget
from tenants import keys
from tenants.models import ApiKey, Team


def test_secrets_have_a_prefix_and_256_bits_of_entropy():
    secrets = {keys.generate_secret() for _ in range(200)}
    assert len(secrets) == 200
    for secret in secrets:
        assert re.fullmatch(r"gw-[A-Za-z0-9_-]{43}", secret)


def test_the_hash_is_sha256_of_the_secret():
    assert keys.hash_secret("gw-abc") == hashlib.sha256(b"gw-abc").hexdigest()


@pytest.mark.django_db
def test_create_api_key_prints_only_the_secret_and_stores_only_its_hash():
    out = io.StringIO()
    call_command(
        "create_api_key",
        "--tenant",
        "acme",
        "--team",
        "web",
        "--name",
        "ci",
        "--models",
        "simple_ops",
        "gpt-5.5",
        "--budget-usd",
        "25",
        "--rpm",
        "60",
        "--tpm",
        "10000",
        stdout=out,
    )
    secret = out.getvalue().strip()
    assert "\n" not in secret and secret.startswith("gw-")
    key = ApiKey.objects.get()
    assert key.key_hash == keys.hash_secret(secret)
    assert key.prefix == secret[:11]
    assert secret not in {str(value) for value in key.__dict__.values()}
    assert key.allowed_models == ["simple_ops", "gpt-5.5"]
    assert (key.rpm_limit, key.tpm_limit) == (60, 10000)
    assert Team.objects.get().tenant.slug == "acme"
    assert Budget.objects.get(api_key=key).amount_usd == 25


@pytest.mark.django_db
def test_create_api_key_reuses_the_tenant_and_team():
    call_command("create_api_key", "--tenant", "acme", "--team", "web", "--name", "one", stdout=io.StringIO())
    call_command("create_api_key", "--tenant", "acme", "--team", "web", "--name", "two", stdout=io.StringIO())
    assert Team.objects.count() == 1 and ApiKey.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["--tenant", "not a slug", "--team", "web", "--name", "x"],
        ["--tenant", "acme", "--team", "web", "--name", "x", "--rpm", "0"],
        ["--tenant", "acme", "--team", "web", "--name", "x", "--budget-usd", "lots"],
        # Budgets are stored to 1/100 of a cent: this one would be stored as $0 (a database error before).
        ["--tenant", "acme", "--team", "web", "--name", "x", "--budget-usd", "0.00004"],
    ],
)
def test_create_api_key_rejects_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("create_api_key", *args, stdout=io.StringIO())
    assert not ApiKey.objects.exists()
