"""Model aliases: names clients send (exact or glob) mapped to a model, tier or ``auto``."""

from __future__ import annotations

from django.db import models


class ModelAlias(models.Model):
    """A name a client may send as ``model`` that the gateway routes to ``target``.

    ``pattern`` is an exact name (``sonnet``) or a glob (``claude-*opus*``, using
    ``*``, ``?`` and ``[...]``). Real model and tier names always win over
    aliases; a tenant's aliases are looked at before the global ones.
    """

    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="model_aliases",
        help_text="Empty for a global alias; set to add or override an alias for one tenant.",
    )
    pattern = models.CharField(
        max_length=200, help_text="The name clients send: exact (sonnet) or a glob (claude-*sonnet*)."
    )
    target = models.CharField(
        max_length=200, help_text="A model name, tier name, auto, or provider:model. Not another alias."
    )
    position = models.IntegerField(
        default=100,
        help_text="Globs are tried in ascending position (then longest pattern first); exact names always first.",
    )
    description = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__slug", "position", "pattern"]
        verbose_name_plural = "model aliases"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "pattern"], name="alias_pattern_unique_per_tenant", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"{self.pattern} → {self.target}"
