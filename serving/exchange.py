"""Per-request state shared by the consumer, the request flow and usage accounting."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from django.utils import timezone

from billing.usage import UsageRecord
from gateway_platform.config.snapshot import KeyInfo
from gateway_platform.errors import GatewayError
from providers.adapters.base import Deployment, Usage

NONE = "none"


class Responder(Protocol):
    """Where an answer goes (the consumer): headers once, then body pieces."""

    async def send_headers(self, *, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None: ...

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None: ...


def attempt_record(
    deployment: Deployment, error: GatewayError | None, *, started: float | None, state: str = ""
) -> dict[str, object]:
    """One hop as the usage event stores it."""
    attempt: dict[str, object] = {
        "provider": deployment.provider.name,
        "model": deployment.name,
        "status": error.status if error else 200,
        "error": (error.code or error.type) if error else "",
    }
    if started is not None:
        attempt["seconds"] = round(time.monotonic() - started, 4)
    if state:
        attempt["circuit"] = state
    return attempt


@dataclass(slots=True)
class Exchange:
    """One /v1/ request from arrival to its usage record."""

    request_id: str
    endpoint: str
    request_headers: dict[bytes, bytes]
    started_monotonic: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=timezone.now)
    key: KeyInfo | None = None
    requested_model: str = ""
    tier: str | None = None
    deployment: Deployment | None = None
    stream: bool = False
    usage: Usage | None = None
    cost_usd: Decimal = Decimal(0)
    status: int = 0
    error_code: str = ""
    headers_sent: bool = False
    first_token_monotonic: float | None = None
    client_disconnected: bool = False
    cache_status: str = "BYPASS"
    rate_headers: dict[str, str] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    in_flight: tuple[Deployment, float] | None = None  # the attempt running now (deployment, start)
    skill: str = ""
    route_reason: dict[str, Any] = field(default_factory=dict)
    route_header: str = ""  # X-Gateway-Route-Reason, when the gateway chose the tier
    tokens_saved: dict[str, int] = field(default_factory=dict)
    cost_saved_usd: Decimal = Decimal(0)
    cache_similarity: float | None = None
    budget_status: str = ""
    guardrail: str = ""
    # Cost of answers paid for but not served (a cascade's rejected cheap answer), included in cost_usd.
    discarded_cost_usd: Decimal = Decimal(0)
    extra_headers: dict[str, str] = field(default_factory=dict)  # set by features (e.g. X-Gateway-Guardrail)

    def gateway_headers(self, extra: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
        """The contract's response headers, as far as they are known now."""
        deployment = self.deployment
        values = {
            "X-Request-Id": self.request_id,
            "X-Gateway-Tier": self.tier or NONE,
            "X-Gateway-Provider": deployment.provider.name if deployment else NONE,
            "X-Gateway-Model": deployment.name if deployment else NONE,
            "X-Gateway-Cache": self.cache_status,
            "X-Gateway-Cost-USD": f"{self.cost_usd:.8f}",
            **self.rate_headers,
            **self.extra_headers,
            **(extra or {}),
        }
        if self.route_header:
            values["X-Gateway-Route-Reason"] = self.route_header
        if self.cache_similarity is not None:
            values["X-Gateway-Cache-Similarity"] = f"{self.cache_similarity:.4f}"
        hops = sum(1 for attempt in self.attempts if attempt["error"])
        if hops:
            values["X-Gateway-Fallback"] = str(hops)
        return [(k.encode(), v.encode()) for k, v in values.items()]

    def _attempts_so_far(self) -> list[dict[str, Any]]:
        if self.in_flight is None:
            return self.attempts

        deployment, started = self.in_flight
        return [*self.attempts, attempt_record(deployment, None, started=started)]

    def to_usage_record(self) -> UsageRecord:
        now = time.monotonic()
        key = self.key
        deployment = self.deployment
        usage = self.usage or Usage()
        return UsageRecord(
            request_id=self.request_id,
            endpoint=self.endpoint,
            started_at=self.started_at,
            finished_at=timezone.now(),
            status_code=self.status,
            tenant_id=key.tenant_id if key else None,
            team_id=key.team_id if key else None,
            api_key_id=key.id if key else None,
            requested_model=self.requested_model,
            tier=self.tier or "",
            model=deployment.name if deployment else "",
            provider=deployment.provider.name if deployment else "",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            tokens_estimated=usage.estimated,
            cost_usd=self.cost_usd,
            latency_ms=round((now - self.started_monotonic) * 1000),
            ttft_ms=(
                round((self.first_token_monotonic - self.started_monotonic) * 1000)
                if self.first_token_monotonic is not None
                else None
            ),
            error_code=self.error_code,
            cache_status=self.cache_status,
            stream=self.stream,
            client_disconnected=self.client_disconnected,
            attempts=self._attempts_so_far(),
            skill=self.skill,
            route_reason=self.route_reason,
            tokens_saved=self.tokens_saved,
            cost_saved_usd=self.cost_saved_usd,
            cache_similarity=self.cache_similarity,
            budget_status=self.budget_status,
            guardrail=self.guardrail,
        )
