"""Routing and guardrail policies as the hot path reads them (from the snapshot).

Each tenant may have its own ``RoutingPolicy`` / ``GuardrailPolicy`` row; the
row without a tenant is the global default, and a tenant without a row of its
own follows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway_platform.config.snapshot import Snapshot, register_loader

EXTENSION = "routing.policies"


@dataclass(frozen=True, slots=True)
class RoutingPolicyInfo:
    strategy: str = "cost_optimized"
    baseline_tier: str = ""
    cascade_enabled: bool = False
    cascade_quality_threshold: float = 0.6
    strip_ide_boilerplate: bool = False
    dedupe_files: bool = False
    trim_context: bool = True
    diff_first_edits: bool = False
    code_mode: bool = False
    anthropic_prompt_caching: bool = True
    summarize_context: bool = False
    summarize_threshold_tokens: int = 60_000


@dataclass(frozen=True, slots=True)
class GuardrailInfo:
    mode: str = "allow"
    commands: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Policies:
    routing_default: RoutingPolicyInfo = field(default_factory=RoutingPolicyInfo)
    routing_by_tenant: dict[int, RoutingPolicyInfo] = field(default_factory=dict)
    guardrail_default: GuardrailInfo = field(default_factory=GuardrailInfo)
    guardrail_by_tenant: dict[int, GuardrailInfo] = field(default_factory=dict)


def _routing_info(row: object) -> RoutingPolicyInfo:
    return RoutingPolicyInfo(**{name: getattr(row, name) for name in RoutingPolicyInfo.__slots__})


def load_policies() -> Policies:
    """Every routing and guardrail policy (synchronous; called by the snapshot loader)."""
    from routing.models import GuardrailPolicy, RoutingPolicy

    routing_default = RoutingPolicyInfo()
    routing_by_tenant: dict[int, RoutingPolicyInfo] = {}
    for row in RoutingPolicy.objects.all():
        info = _routing_info(row)
        if row.tenant_id is None:
            routing_default = info
        else:
            routing_by_tenant[row.tenant_id] = info
    guardrail_default = GuardrailInfo()
    guardrail_by_tenant: dict[int, GuardrailInfo] = {}
    for row in GuardrailPolicy.objects.all():
        guard = GuardrailInfo(mode=row.mode, commands=tuple(row.commands))
        if row.tenant_id is None:
            guardrail_default = guard
        else:
            guardrail_by_tenant[row.tenant_id] = guard
    return Policies(routing_default, routing_by_tenant, guardrail_default, guardrail_by_tenant)


def routing_policy(snapshot: Snapshot, tenant_id: int | None) -> RoutingPolicyInfo:
    """The routing policy in force for a tenant."""
    policies: Policies = snapshot.extensions.get(EXTENSION) or Policies()
    if tenant_id is not None and tenant_id in policies.routing_by_tenant:
        return policies.routing_by_tenant[tenant_id]
    return policies.routing_default


def guardrail_policy(snapshot: Snapshot, tenant_id: int | None) -> GuardrailInfo:
    """The guardrail policy in force for a tenant."""
    policies: Policies = snapshot.extensions.get(EXTENSION) or Policies()
    if tenant_id is not None and tenant_id in policies.guardrail_by_tenant:
        return policies.guardrail_by_tenant[tenant_id]
    return policies.guardrail_default


def register() -> None:
    register_loader(EXTENSION, load_policies)
