"""Stored Responses (``store: true``): what ``previous_response_id`` and ``GET /v1/responses/{id}`` read.

A stored response keeps the whole conversation up to and including its own
output (as Responses input items), so a follow-up request on any gateway
process can continue it with one primary-key read. Rows are scoped by tenant
— another tenant's id is answered exactly like a missing one (404) — and
expire after ``GATEWAY_RESPONSES_TTL_SECONDS``; expired rows are never read
and are pruned by Celery beat (``serving.tasks.prune_stored_responses``).

The write happens before the last byte of the answer is sent, so a client
holding a completed response can always continue it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from gateway_platform.errors import GatewayError

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
PRUNE_BATCH = 1000


def not_found(response_id: str, param: str | None = None) -> GatewayError:
    """The 404 OpenAI answers for an unknown (or foreign, or expired) response id."""
    return GatewayError(
        f"Response with id '{response_id}' not found.",
        status=404,
        type="invalid_request_error",
        code="response_not_found",
        param=param,
    )


@dataclass(frozen=True, slots=True)
class Stored:
    response: JSON
    conversation: list[JSON]


def output_as_input(output: list[JSON]) -> list[JSON]:
    """A response's output items as input items for the next turn (reasoning is kept; it is dropped on translation)."""
    items: list[JSON] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            items.append({"type": "message", "role": "assistant", "content": item.get("content") or []})
        else:
            items.append({k: v for k, v in item.items() if k != "status"})
    return items


def _load(tenant_id: int, response_id: str) -> Stored | None:
    from serving.models import StoredResponse

    row = (
        StoredResponse.objects.filter(pk=response_id, tenant_id=tenant_id, expires_at__gt=timezone.now())
        .only("response", "conversation")
        .first()
    )
    return Stored(response=row.response, conversation=row.conversation) if row else None


def _save(tenant_id: int, api_key_id: int | None, response: JSON, conversation: list[JSON]) -> None:
    from serving.models import StoredResponse

    now = timezone.now()
    StoredResponse.objects.update_or_create(
        pk=response["id"],
        defaults={
            "tenant_id": tenant_id,
            "api_key_id": api_key_id,
            "model": str(response.get("model") or "")[:200],
            "status": str(response.get("status") or "")[:20],
            "response": response,
            "conversation": conversation,
            "expires_at": now + timedelta(seconds=settings.GATEWAY["RESPONSES_TTL_SECONDS"]),
        },
    )


def _delete(tenant_id: int, response_id: str) -> bool:
    from serving.models import StoredResponse

    deleted, _ = StoredResponse.objects.filter(
        pk=response_id, tenant_id=tenant_id, expires_at__gt=timezone.now()
    ).delete()
    return deleted > 0


async def load(tenant_id: int, response_id: str, *, param: str | None = None) -> Stored:
    """The stored response, or a 404 ``GatewayError``."""
    stored = await sync_to_async(_load, thread_sensitive=False)(tenant_id, response_id)
    if stored is None:
        raise not_found(response_id, param)
    return stored


async def save(tenant_id: int, api_key_id: int | None, response: JSON, conversation: list[JSON]) -> None:
    """Keep ``response`` and the conversation that led to it (input items, then its output)."""
    full = [*conversation, *output_as_input(response.get("output") or [])]
    await sync_to_async(_save, thread_sensitive=False)(tenant_id, api_key_id, response, full)


async def delete(tenant_id: int, response_id: str) -> None:
    """Forget a stored response (404 if there is none for this tenant)."""
    if not await sync_to_async(_delete, thread_sensitive=False)(tenant_id, response_id):
        raise not_found(response_id)


def prune_expired() -> int:
    """Delete expired stored responses in batches; the number deleted."""
    from serving.models import StoredResponse

    total = 0
    while True:
        ids = list(
            StoredResponse.objects.filter(expires_at__lte=timezone.now()).values_list("pk", flat=True)[:PRUNE_BATCH]
        )
        if not ids:
            return total
        deleted, _ = StoredResponse.objects.filter(pk__in=ids).delete()
        total += deleted
