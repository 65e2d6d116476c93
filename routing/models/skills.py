"""Skills: reusable methodology prompts (seed 002)."""

from __future__ import annotations

from django.db import models


class Skill(models.Model):
    """A methodology prompt a request can ask for (``X-Gateway-Skill``), global or per tenant."""

    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="skills",
        help_text="Empty for a global skill; set to override the global skill of the same slug for one tenant.",
    )
    slug = models.SlugField(max_length=100, help_text="The id clients send.")
    name = models.CharField(max_length=200, help_text="A human-readable name for the admin.")
    description = models.TextField(blank=True)
    system_prompt = models.TextField(help_text="Prepended to the request's system prompt.")
    forced_tier = models.CharField(max_length=100, blank=True, help_text="Tier this skill always uses, if any.")
    enabled = models.BooleanField(default=True, help_text="A disabled skill is refused with a 400.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "slug"], name="skill_slug_unique_per_tenant", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return self.slug
