"""Config as code: import and export the gateway configuration as one YAML file.

The schema (see ``routing.config_file.schema``): ``providers`` and ``models``
lists, ``routing`` (``strategy``; ``baseline_tier``; ``tiers`` with ``model``,
optional ``fallbacks``, ``complexity_max`` (the tier's ``auto`` band) and
``max_output_tokens``; ``fallback`` naming a provider and a model), and the sections
``server``, ``caching``, ``mcp`` and ``security``, stored verbatim as
``ConfigSection`` rows until their features exist. Unknown keys are reported as
warnings, never silently dropped.

Importing upserts by name in one transaction and never deletes: an entry in the
file describes its row completely (keys left out take the model defaults); rows
the file does not mention are left alone. Names the file references but does
not define are looked up in the database, then in the bundled defaults, so seed
000's bare template imports unchanged on an empty database. Any error raises
``ConfigError`` naming the key path and line, and nothing changes.

Modules: ``yaml_lines`` (YAML with lines), ``values`` (typed
value checks), ``schema`` (specs, pure parsing), ``apply``
(database writes) and this one (the public entry points and export).
"""

from __future__ import annotations

import logging
from typing import Any

import yaml
from django.db import models as db
from django.db import transaction
from django.db.models import Prefetch

from providers.models import Model, Provider
from routing.config_file.apply import (
    DEFAULTS_PATH,
    DEFAULTS_SOURCE,
    SECTION_EXPORTERS,
    Change,
    ImportMode,
    ImportReport,
    apply_config,
    find_fallback_model,
)
from routing.config_file.schema import ConfigFile, field_default, parse_config
from routing.config_file.yaml_lines import ConfigError, Issue
from routing.models import Balancing, ConfigSection, RoutingPolicy, Tier, TierModel
from routing.models.tiers import position_value

__all__ = [
    "DEFAULTS_PATH",
    "Change",
    "ConfigError",
    "ConfigFile",
    "ImportMode",
    "ImportReport",
    "Issue",
    "config_export",
    "config_import",
    "config_seed_defaults",
    "parse_config",
]

logger = logging.getLogger(__name__)

EXPORT_HEADER = "# Gateway configuration, exported by `manage.py export_config`; load it with `import_config`.\n"


def config_import(*, text: str, source: str = "<string>", mode: ImportMode = "upsert") -> ImportReport:
    """Validate config-file ``text`` and apply it in one transaction.

    ``mode="upsert"`` creates or updates rows by name; ``"create_missing"`` only
    creates rows that do not exist and leaves existing ones (and the global
    routing policy, once it exists) untouched. Raises ``ConfigError`` naming the
    key path and line of every problem; then nothing has changed.
    """
    config = parse_config(text, source=source)
    with transaction.atomic():
        report = apply_config(config, mode)
    logger.info(
        "configuration imported from %s",
        source,
        extra={"import_mode": mode, "rows_created": report.total("created"), "rows_updated": report.total("updated")},
    )
    return report


def config_seed_defaults() -> ImportReport:
    """Create what the bundled defaults define and the database lacks; never changes existing rows."""
    with transaction.atomic():
        report = config_import(
            text=DEFAULTS_PATH.read_text(encoding="utf-8"), source=DEFAULTS_SOURCE, mode="create_missing"
        )
        RoutingPolicy.objects.get_or_create(tenant=None)
    return report


def config_export() -> str:
    """The current configuration as YAML in the import schema; importing it reproduces this state."""
    document: dict[str, Any] = {
        # Tenants' own providers (and their encrypted keys) are tenant data, not platform configuration.
        "providers": [_provider_entry(p) for p in Provider.objects.filter(tenant=None).order_by("pk")],
        "models": [
            _model_entry(model)
            for model in Model.objects.filter(provider__tenant=None).select_related("provider").order_by("pk")
        ],
        "routing": _routing_entry(),
    }
    for section in ConfigSection.objects.order_by("name"):
        if section.name in document:
            logger.warning("config section %r shadows a schema key; not exported", section.name)
            continue
        document[section.name] = section.data
    for name, export in SECTION_EXPORTERS.items():
        value = export()
        if value:
            document[name] = value
        else:
            document.pop(name, None)
    return EXPORT_HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


class _Dumper(yaml.SafeDumper):
    """Block style with lists indented under their key, as the bundled defaults are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _non_default(row: db.Model, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(row, f) for f in fields if getattr(row, f) != field_default(type(row), f)}


def _provider_entry(provider: Provider) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": provider.name, "kind": provider.kind, "base_url": provider.base_url}
    if provider.api_key_env:
        entry["api_key_env"] = provider.api_key_env
    for key in ("api_version", "region"):
        if getattr(provider, key):
            entry[key] = getattr(provider, key)
    if provider.supports_responses:
        entry["supports_responses"] = True
    if provider.extra_headers:
        entry["extra_headers"] = dict(sorted(provider.extra_headers.items()))  # variable names, never values
    entry |= _non_default(provider, ("connect_timeout", "read_timeout", "total_timeout", "max_connections"))
    if not provider.enabled:
        entry["enabled"] = False
    return entry


def _model_entry(model: Model) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": model.name,
        "provider": model.provider.name,
        "upstream_model": model.upstream_model,
        "input_cost_per_million": float(model.input_cost_per_million),
        "output_cost_per_million": float(model.output_cost_per_million),
        "context_window": model.context_window,
    }
    for price in ("cache_read_cost_per_million", "cache_write_cost_per_million"):
        if getattr(model, price) is not None:
            entry[price] = float(getattr(model, price))
    if model.max_output_tokens is not None:
        entry["max_output_tokens"] = model.max_output_tokens
    if not model.enabled:
        entry["enabled"] = False
    return entry


def _tier_entry(tier: Tier) -> dict[str, Any]:
    positions = [position_value(position) for position in tier.positions()]
    entry: dict[str, Any] = {"name": tier.name}
    if positions:
        entry["model"] = positions[0]
    if positions[1:]:
        entry["fallbacks"] = positions[1:]
    if tier.balancing != Balancing.WEIGHTED:
        entry["balancing"] = tier.balancing
    if tier.description:
        entry["description"] = tier.description
    if tier.max_cost_per_million is not None:
        entry["max_cost_per_million"] = float(tier.max_cost_per_million)
    if tier.capabilities:
        entry["capabilities"] = list(tier.capabilities)
    if tier.complexity_max is not None:
        entry["complexity_max"] = tier.complexity_max
    if tier.max_output_tokens is not None:
        entry["max_output_tokens"] = tier.max_output_tokens
    if not tier.enabled:
        entry["enabled"] = False
    return entry


def _routing_entry() -> dict[str, Any]:
    members = Prefetch("tier_models", queryset=TierModel.objects.select_related("model"))
    tiers = [_tier_entry(tier) for tier in Tier.objects.filter(tenant=None).prefetch_related(members).order_by("pk")]
    policy = RoutingPolicy.objects.filter(tenant__isnull=True).select_related("fallback_model__provider").first()
    if policy is None:
        return {"tiers": tiers}
    routing: dict[str, Any] = {"strategy": policy.strategy}
    if policy.baseline_tier:
        routing["baseline_tier"] = policy.baseline_tier
    routing["tiers"] = tiers
    if policy.fallback_model is not None:
        routing["fallback"] = {
            "provider": policy.fallback_model.provider.name,
            "model": _fallback_ref(policy.fallback_model),
            "enabled": policy.fallback_enabled,
        }
    return routing


def _fallback_ref(model: Model) -> str:
    """The provider's upstream id (as seed 000 writes it) unless that would name another model."""
    ref = model.upstream_model
    return ref if find_fallback_model(model.provider, ref) == model else model.name
