"""Config-file sections kept verbatim until a feature applies them."""

from __future__ import annotations

from django.db import models


class ConfigSection(models.Model):
    """A config-file section kept as imported; ``applied`` is false until a feature uses it."""

    name = models.CharField(max_length=100, unique=True)
    data = models.JSONField()
    applied = models.BooleanField(default=False)
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
