"""Upstream providers and the models they serve, with prices."""

from __future__ import annotations

import os

from django.core.validators import MinValueValidator
from django.db import models


class Provider(models.Model):
    """An upstream API endpoint speaking one wire format (``kind``)."""

    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        ANTHROPIC = "anthropic", "Anthropic Messages"
        OLLAMA = "ollama", "Ollama"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    base_url = models.URLField(
        max_length=500,
        help_text="OpenAI-compatible: include /v1. Anthropic and Ollama: the host root.",
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of the environment variable holding the credential (never the credential).",
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
        return bool(self.api_key_env and os.environ.get(self.api_key_env))


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
