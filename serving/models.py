"""The one thing the request path stores itself: Responses kept for ``previous_response_id``."""

from __future__ import annotations

from django.db import models


class StoredResponse(models.Model):
    """A ``/v1/responses`` answer created with ``store: true`` (tenant-scoped, expiring)."""

    id = models.CharField(primary_key=True, max_length=64, help_text="resp_… as returned to the client.")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="stored_responses")
    api_key = models.ForeignKey(
        "tenants.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="stored_responses"
    )
    model = models.CharField(max_length=200, blank=True, help_text="The model name the client asked for.")
    status = models.CharField(max_length=20, blank=True)
    response = models.JSONField(help_text="The response object as the client received it.")
    conversation = models.JSONField(
        default=list, help_text="Input items of the whole conversation, ending with this response's output."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="storedresponse_tenant_recent")]

    def __str__(self) -> str:
        return self.id
