"""Upstream providers and the models they serve, with prices."""

from __future__ import annotations

import os
import re

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from gateway_platform.outbound import OutboundURLRefused, check_provider_url

HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
# Set by the adapters themselves (credentials, framing): an extra header may not replace them.
RESERVED_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "x-goog-api-key", "host", "content-length", "content-type"}
)


def validate_extra_headers(value: object) -> None:
    """``{"Header-Name": "ENV_VAR_NAME"}``: header names and variable names, never values."""
    if not isinstance(value, dict):
        raise ValidationError("Extra headers must be an object of header name → environment variable name.")
    for header, env_name in value.items():
        if not isinstance(header, str) or not HEADER_NAME_RE.match(header):
            raise ValidationError(f"{header!r} is not a valid HTTP header name.")
        if header.lower() in RESERVED_HEADERS or header.lower().startswith("x-amz-"):
            raise ValidationError(f"{header!r} is set by the adapter and cannot be an extra header.")
        if not isinstance(env_name, str) or not ENV_NAME_RE.match(env_name):
            raise ValidationError(
                f"The value for {header!r} must be the NAME of an environment variable (letters, digits, _), "
                "not the secret itself."
            )


class Provider(models.Model):
    """An upstream API endpoint speaking one wire format (``kind``)."""

    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        ANTHROPIC = "anthropic", "Anthropic Messages"
        OLLAMA = "ollama", "Ollama"
        AZURE = "azure", "Azure OpenAI"
        GEMINI = "gemini", "Google Gemini"
        BEDROCK = "bedrock", "AWS Bedrock (Converse)"

    name = models.SlugField(max_length=100, unique=True)
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="providers",
        help_text="Empty: a platform provider. Set: the tenant's own provider (own key), used only for its requests.",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    base_url = models.URLField(
        max_length=500,
        help_text=(
            "OpenAI-compatible: include /v1. Anthropic, Ollama, Gemini: the host root. Azure: "
            "https://RESOURCE.openai.azure.com. Bedrock: https://bedrock-runtime.REGION.amazonaws.com."
        ),
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text=(
            "Name of the environment variable holding the credential (never the credential). Bedrock: "
            "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]; empty = the standard AWS_* variables."
        ),
    )
    api_key_encrypted = models.TextField(
        blank=True,
        editable=False,
        help_text="The tenant's own credential, Fernet-encrypted (providers.secrets); never shown.",
    )
    api_version = models.CharField(
        max_length=32, blank=True, help_text="Azure OpenAI: the api-version query parameter (default 2024-10-21)."
    )
    region = models.CharField(max_length=32, blank=True, help_text="AWS Bedrock: the region requests are signed for.")
    supports_responses = models.BooleanField(
        default=False,
        help_text=(
            "OpenAI-compatible: the upstream serves the Responses API (POST {base_url}/responses), so "
            "/v1/responses requests are passed through to it unchanged instead of translated to chat."
        ),
    )
    extra_headers = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_extra_headers],
        help_text=(
            'Headers sent on every call, each value read from an environment variable: {"CF-Access-Client-Id": '
            '"LOCAL_CF_ACCESS_CLIENT_ID"}. Only variable names are stored; values are never shown.'
        ),
    )
    connect_timeout = models.FloatField(default=5.0, validators=[MinValueValidator(0.1)])
    read_timeout = models.FloatField(
        default=60.0, validators=[MinValueValidator(0.1)], help_text="Longest silence between bytes."
    )
    total_timeout = models.FloatField(default=600.0, validators=[MinValueValidator(0.1)])
    max_connections = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credential(self) -> bool:
        if self.api_key_encrypted:
            return True
        if self.api_key_env:
            return bool(os.environ.get(self.api_key_env))
        # Bedrock falls back to the standard AWS variables.
        return self.kind == self.Kind.BEDROCK and bool(os.environ.get("AWS_ACCESS_KEY_ID"))

    def clean(self) -> None:
        super().clean()
        if self.base_url:
            try:
                check_provider_url(self.base_url)  # no provider onto the gateway's own network
            except OutboundURLRefused as exc:
                raise ValidationError({"base_url": str(exc)}) from None

    def set_api_key(self, secret: str) -> None:
        """Store ``secret`` encrypted (an empty one clears it); the caller saves."""
        from providers.secrets import encrypt

        self.api_key_encrypted = encrypt(secret) if secret else ""


class Model(models.Model):
    """A model clients can name, served by a provider, with its prices."""

    name = models.CharField(max_length=200, unique=True, help_text="Public name clients use.")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    upstream_model = models.CharField(max_length=200, help_text="The provider's own model id.")
    input_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    output_cost_per_million = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cache_read_cost_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Price of prompt tokens read from the provider's prompt cache; empty: the input price.",
    )
    cache_write_cost_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Price of prompt tokens written to the provider's prompt cache; empty: the input price.",
    )
    context_window = models.PositiveIntegerField(default=128_000)
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Default output cap when a request sets none."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProviderHealth(models.Model):
    """The outcome of the latest health probe of one provider (written by ``providers.probes``)."""

    class Status(models.TextChoices):
        HEALTHY = "healthy", "Healthy"
        DEGRADED = "degraded", "Degraded"
        DOWN = "down", "Down"
        UNKNOWN = "unknown", "Unknown"

    provider = models.OneToOneField(Provider, on_delete=models.CASCADE, related_name="health")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNKNOWN)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Probe round trip, when it answered.")
    last_error = models.CharField(max_length=300, blank=True, help_text="Short description; never a credential.")
    checked_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "provider health"

    def __str__(self) -> str:
        return f"{self.provider_id}: {self.status}"
