"""The tiers a tenant sees: the global tiers with that tenant's overrides applied.

A tenant ``Tier`` row with the name of a global tier overrides it for that
tenant's keys; a field it leaves empty (no models, no capabilities, no band, no
output cap, no description) is inherited from the global tier, and a disabled
override hides the global tier. A tenant row with a new name is a tier of that
tenant only. Global tiers stay in ``Snapshot.tiers``; the tenant rows are
loaded with every snapshot (``register_loader``) and each tenant's view —
including its compiled complexity scorer — is built on first use and kept
for that snapshot version.

Two rules shape every view (``TierView.of``):

- ``max_cost_per_million`` is enforced at route time: a model whose input
  price per million tokens is above its tier's cap is skipped in that tier
  (logged when the view is built; the admin marks it). A tier left with no
  model is out of ``auto`` and answers 400 when named.
- ``auto`` works on any configuration: when no tier of the view has a
  complexity band (seed 000's YAML has none), the tiers get bands from seed
  003's thresholds (``COMPLEXITY_THRESHOLD_LIGHT`` 0.35 /
  ``COMPLEXITY_THRESHOLD_HEAVY`` 0.65) in order of their primary model's price,
  cheapest first (``derived_band_edges``). Once any tier has a band, only the
  tiers with one take part, as configured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TypeVar

from gateway_platform.config.snapshot import Balance, Snapshot, TierInfo, register_loader
from routing.balancing import balance_of
from routing.scoring import Band, Scorer

EXTENSION = "routing.tier_overrides"
LIGHT_THRESHOLD, HEAVY_THRESHOLD = 0.35, 0.65  # seed 003: COMPLEXITY_THRESHOLD_LIGHT / _HEAVY

logger = logging.getLogger(__name__)

_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class TierOverride:
    """A tenant's tier row as loaded (models by name; resolved against the snapshot's models)."""

    id: int
    tenant_id: int
    name: str
    enabled: bool
    description: str = ""
    capabilities: tuple[str, ...] = ()
    model_names: tuple[str, ...] = ()
    complexity_max: float | None = None
    max_output_tokens: int | None = None
    max_cost_per_million: Decimal | None = None
    balance: Balance | None = None  # positions shared by several models (with ``model_names``)


@dataclass(frozen=True, slots=True)
class TierView:
    """Tiers by name as one tenant sees them; ``bands`` are those `auto` can route to, cheapest first."""

    tiers: Mapping[str, TierInfo]
    bands: tuple[TierInfo, ...]
    scorer: Scorer

    @classmethod
    def of(cls, tiers: Mapping[str, TierInfo]) -> TierView:
        """The view of ``tiers``: price caps applied, bands derived when none is configured."""
        tiers = with_derived_bands({name: within_cost_cap(tier) for name, tier in tiers.items()})
        banded = [t for t in tiers.values() if t.complexity_max is not None and t.deployments]
        bands = tuple(sorted(banded, key=lambda t: (t.complexity_max or 0.0, t.name)))
        scorer = Scorer([Band(t.name, t.complexity_max or 0.0, t.capabilities) for t in bands])
        return cls(tiers=tiers, bands=bands, scorer=scorer)

    def is_lowest_band(self, tier: str) -> bool:
        return bool(self.bands) and self.bands[0].name == tier


@dataclass(slots=True)
class TierOverrides:
    """Tenant tier rows by tenant id, plus the views built from them (per snapshot, on first use)."""

    by_tenant: dict[int, tuple[TierOverride, ...]] = field(default_factory=dict)
    _views: dict[int | None, TierView] = field(default_factory=dict)

    def view(self, snapshot: Snapshot, tenant_id: int | None) -> TierView:
        owner = tenant_id if tenant_id in self.by_tenant else None
        view = self._views.get(owner)
        if view is None:
            overrides = self.by_tenant.get(owner, ()) if owner is not None else ()
            view = self._views[owner] = TierView.of(merge_tiers(snapshot, overrides))
        return view


def within_cost_cap(tier: TierInfo) -> TierInfo:
    """``tier`` without the models whose input price per million exceeds its ``max_cost_per_million``."""
    cap = tier.max_cost_per_million
    if cap is None:
        return tier
    kept = tuple(d for d in tier.deployments if d.input_cost_per_million <= cap)
    if len(kept) == len(tier.deployments):
        return tier
    skipped = [d.name for d in tier.deployments if d not in kept]
    logger.warning(
        "tier %s skips models priced above its max_cost_per_million",
        tier.name,
        extra={"tier": tier.name, "max_cost_per_million": str(cap), "skipped_models": skipped},
    )
    return replace(tier, deployments=kept)


def derived_band_edges(count: int) -> tuple[float, ...]:
    """Band upper edges for ``count`` tiers in price order, from seed 003's thresholds.

    Three tiers get exactly 0.35 / 0.65 / 1.0; two get 0.35 / 1.0 (light work
    versus the rest); more spread the middle tiers evenly over (0.35, 0.65].
    """
    if count <= 0:
        return ()
    if count == 1:
        return (1.0,)
    middles = count - 2
    step = (HEAVY_THRESHOLD - LIGHT_THRESHOLD) / middles if middles else 0.0
    inner = tuple(round(LIGHT_THRESHOLD + step * (i + 1), 4) for i in range(middles))
    return (LIGHT_THRESHOLD, *inner, 1.0)


def price_order_key(tier: TierInfo) -> tuple[object, ...]:
    """How tiers sort by cost: the primary model's input, then output price, then the tier's cap, then name."""
    primary = tier.deployments[0]
    cap = tier.max_cost_per_million if tier.max_cost_per_million is not None else primary.input_cost_per_million
    return (primary.input_cost_per_million, primary.output_cost_per_million, cap, tier.name)


def with_derived_bands(tiers: Mapping[str, TierInfo]) -> dict[str, TierInfo]:
    """``tiers`` with bands derived in price order when no tier with models has one (pure)."""
    routable = [t for t in tiers.values() if t.deployments]
    if not routable or any(t.complexity_max is not None for t in routable):
        return dict(tiers)
    ordered = sorted(routable, key=price_order_key)
    derived = dict(tiers)
    for tier, edge in zip(ordered, derived_band_edges(len(ordered)), strict=True):
        derived[tier.name] = replace(tier, complexity_max=edge)
    return derived


def merge_tiers(snapshot: Snapshot, overrides: tuple[TierOverride, ...]) -> dict[str, TierInfo]:
    """The global tiers with ``overrides`` applied (pure)."""
    tiers = dict(snapshot.tiers)
    for row in overrides:
        if not row.enabled:
            tiers.pop(row.name, None)
            continue
        base = snapshot.tiers.get(row.name)
        deployments = tuple(snapshot.models[n] for n in row.model_names if n in snapshot.models)
        tiers[row.name] = TierInfo(
            id=row.id,
            name=row.name,
            description=row.description or (base.description if base else ""),
            capabilities=row.capabilities or (base.capabilities if base else ()),
            deployments=deployments if row.model_names or base is None else base.deployments,
            complexity_max=_inherit(row.complexity_max, base.complexity_max if base else None),
            max_output_tokens=_inherit(row.max_output_tokens, base.max_output_tokens if base else None),
            max_cost_per_million=_inherit(row.max_cost_per_million, base.max_cost_per_million if base else None),
            balance=row.balance if row.model_names or base is None else base.balance,
        )
    return tiers


def _inherit(own: _V | None, inherited: _V | None) -> _V | None:
    return own if own is not None else inherited


def tiers_for(snapshot: Snapshot, tenant_id: int | None) -> TierView:
    """The tier view of a tenant (None: the global tiers)."""
    overrides = snapshot.extensions.get(EXTENSION)
    if not isinstance(overrides, TierOverrides):  # a snapshot built without the loader (tests, bench)
        return TierView.of(snapshot.tiers)
    return overrides.view(snapshot, tenant_id)


def load_tier_overrides() -> TierOverrides:
    """Every tenant tier row (synchronous; runs with each snapshot load)."""
    from routing.models import Tier

    by_tenant: dict[int, list[TierOverride]] = {}
    rows = Tier.objects.filter(tenant__isnull=False).prefetch_related("tier_models__model").order_by("name")
    for tier in rows:
        assert tier.tenant_id is not None
        members = [(tm.model.name, tm.position, tm.weight) for tm in tier.tier_models.all()]
        by_tenant.setdefault(tier.tenant_id, []).append(
            TierOverride(
                id=tier.pk,
                tenant_id=tier.tenant_id,
                name=tier.name,
                enabled=tier.enabled,
                description=tier.description,
                capabilities=tuple(tier.capabilities),
                model_names=tuple(name for name, _, _ in members),
                complexity_max=tier.complexity_max,
                max_output_tokens=tier.max_output_tokens,
                max_cost_per_million=tier.max_cost_per_million,
                balance=balance_of(tier.balancing, members),
            )
        )
    return TierOverrides(by_tenant={tenant: tuple(rows) for tenant, rows in by_tenant.items()})


def register() -> None:
    register_loader(EXTENSION, load_tier_overrides)
