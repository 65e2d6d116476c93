"""Applying a validated config file to the database (the write side of ``routing.config_file``).

``apply_config`` upserts by name and never deletes. Names the file references
without defining them are looked up in the database, then in the bundled
defaults; ``routing.fallback``'s provider ``ollama`` and its model are created
as local ones when missing. Problems are collected as ``Issue``s and raised
together as ``ConfigError`` at the end, which rolls the caller's transaction back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from django.db import models as db

from gateway_platform.outbound import OutboundURLRefused, check_provider_url
from providers.models import Model, Provider
from routing.config_file.schema import (
    ConfigFile,
    FallbackSpec,
    ModelSpec,
    ProviderSpec,
    RoutingSpec,
    SectionSpec,
    TierSpec,
    parse_config,
)
from routing.config_file.yaml_lines import ConfigError, Issue, KeyPath, format_path
from routing.models import ConfigSection, RoutingPolicy, Tier, TierModel

DEFAULTS_PATH = Path(__file__).resolve().parent.parent / "defaults" / "gateway-config.yaml"
DEFAULTS_SOURCE = "routing/defaults/gateway-config.yaml"
# Created when routing.fallback names provider "ollama" and no such provider exists yet.
LOCAL_PROVIDER = ProviderSpec(name="ollama", kind=Provider.Kind.OLLAMA, base_url="http://127.0.0.1:11434")

ImportMode = Literal["upsert", "create_missing"]
Action = Literal["created", "updated", "unchanged", "kept"]
ACTIONS: tuple[Action, ...] = ("created", "updated", "unchanged", "kept")
KIND_LABELS = {
    "provider": "providers",
    "model": "models",
    "tier": "tiers",
    "routing policy": "routing policy",
    "section": "sections",
}

_Row = TypeVar("_Row", bound=db.Model)

# Sections a feature applies: name -> apply(data, mode), returning (key path within the section, problem)
# pairs. Apps register in ``AppConfig.ready``; an applied section is marked ``applied``.
SectionApplier = Callable[[Any, ImportMode], list[tuple[KeyPath, str]]]
SECTION_APPLIERS: dict[str, SectionApplier] = {}


# Sections whose export is read from their feature's rows (admin edits included), not the stored import.
SECTION_EXPORTERS: dict[str, Callable[[], Any]] = {}


def register_section(name: str, apply: SectionApplier, export: Callable[[], Any] | None = None) -> None:
    """Apply the config file's ``name`` section with ``apply`` from now on (and export it with ``export``)."""
    SECTION_APPLIERS[name] = apply
    if export is not None:
        SECTION_EXPORTERS[name] = export


@dataclass(frozen=True)
class Change:
    """What an import did to one row. ``note`` says why it was created, or which fields changed."""

    kind: str
    name: str
    action: Action
    note: str = ""


@dataclass(frozen=True)
class ImportReport:
    """The outcome of ``config_import``: one ``Change`` per row touched or kept, sections, warnings."""

    source: str
    mode: ImportMode
    changes: tuple[Change, ...]
    pending_sections: tuple[str, ...]  # stored, but no feature applies them yet
    warnings: tuple[Issue, ...]

    def count(self, kind: str, action: Action) -> int:
        """How many rows of ``kind`` (provider, model, tier, routing policy, section) got ``action``."""
        return sum(1 for change in self.changes if change.kind == kind and change.action == action)

    def total(self, action: Action) -> int:
        """How many rows of any kind got ``action``."""
        return sum(1 for change in self.changes if change.action == action)

    def summary_lines(self, *, verbose: bool = False) -> list[str]:
        """A short human report: counts per kind, rows created on the file's behalf, sections, warnings."""
        mode = " (missing rows only)" if self.mode == "create_missing" else ""
        lines = [f"Imported {self.source}{mode}"]
        for kind, label in KIND_LABELS.items():
            counts = [f"{n} {action}" for action in ACTIONS if (n := self.count(kind, action))]
            if counts:
                lines.append(f"  {label}: {', '.join(counts)}")
        for change in self.changes:
            if (verbose and change.action != "kept") or (change.action == "created" and change.note):
                note = f" ({change.note})" if change.note else ""
                lines.append(f"  {change.action} {change.kind} '{change.name}'{note}")
        if self.pending_sections:
            lines.append(f"Stored, not yet applied: {', '.join(self.pending_sections)}")
        if self.warnings:
            lines.append(f"Warnings ({len(self.warnings)}):")
            lines.extend(f"  {warning}" for warning in self.warnings)
        return lines


def apply_config(config: ConfigFile, mode: ImportMode) -> ImportReport:
    """Write ``config`` to the database; call it inside ``transaction.atomic()``.

    Raises ``ConfigError`` after collecting every reference problem; the caller's
    transaction then discards whatever was written.
    """
    return _Importer(config, mode).run()


def find_fallback_model(provider: Provider, ref: str) -> Model | None:
    """The provider's model whose public name is ``ref``, else the first whose upstream id is."""
    models = Model.objects.filter(provider=provider)
    return models.filter(name=ref).first() or models.filter(upstream_model=ref).order_by("pk").first()


def _member_paths(spec: TierSpec) -> Iterator[tuple[str, KeyPath, int, int]]:
    """Each of the tier's models: its name, the key path that names it, its position and its weight."""
    for number, position in enumerate(spec.positions):
        at: KeyPath = (*spec.path, "model") if number == 0 else (*spec.path, "fallbacks", number - 1)
        for index, (name, weight) in enumerate(position):
            yield name, at if len(position) == 1 else (*at, index, "model"), number, weight


class _Importer:
    """Applies one ``ConfigFile`` to the database; run it inside a transaction."""

    def __init__(self, config: ConfigFile, mode: ImportMode) -> None:
        self.config = config
        self.mode = mode
        self.changes: list[Change] = []
        self.errors: list[Issue] = []
        self.notes: list[Issue] = []  # warnings about what was imported (e.g. models above a tier's cap)
        self.pending_sections: list[str] = []
        self._defaults: ConfigFile | None = None

    def run(self) -> ImportReport:
        for provider in self.config.providers:
            self.save_provider(provider)
        for model in self.config.models:
            self.save_model(model)
        if self.config.routing is not None:
            for tier in self.config.routing.tiers:
                self.save_tier(tier)
            self.save_policy(self.config.routing)
        for section in self.config.sections:
            self.save_section(section)
        if self.errors:
            raise ConfigError(self.errors, self.config.source)  # rolls the transaction back
        return ImportReport(
            source=self.config.source,
            mode=self.mode,
            changes=tuple(self.changes),
            pending_sections=tuple(self.pending_sections),
            warnings=(*self.config.warnings, *self.notes),
        )

    # -- rows ----------------------------------------------------------------------------------

    def save_provider(self, spec: ProviderSpec, *, note: str = "") -> Provider:
        if self.config.source != DEFAULTS_SOURCE:  # the bundled defaults are ours; a file someone wrote is checked
            try:
                check_provider_url(spec.base_url)
            except OutboundURLRefused as exc:
                self.error((*spec.path, "base_url"), str(exc))  # the import is rolled back
        values = {
            "kind": spec.kind,
            "base_url": spec.base_url,
            "api_key_env": spec.api_key_env,
            "api_version": spec.api_version,
            "region": spec.region,
            "supports_responses": spec.supports_responses,
            "extra_headers": dict(spec.extra_headers),
            "connect_timeout": spec.connect_timeout,
            "read_timeout": spec.read_timeout,
            "total_timeout": spec.total_timeout,
            "max_connections": spec.max_connections,
            "enabled": spec.enabled,
        }
        return self.save("provider", Provider, {"name": spec.name}, values, note=note)

    def save_model(self, spec: ModelSpec, *, note: str = "") -> Model | None:
        owner = self.provider(spec.provider, (*spec.path, "provider"))
        if owner is None:
            return None
        values = {
            "provider_id": owner.pk,
            "upstream_model": spec.upstream_model,
            "input_cost_per_million": spec.input_cost_per_million,
            "output_cost_per_million": spec.output_cost_per_million,
            "cache_read_cost_per_million": spec.cache_read_cost_per_million,
            "cache_write_cost_per_million": spec.cache_write_cost_per_million,
            "context_window": spec.context_window,
            "max_output_tokens": spec.max_output_tokens,
            "enabled": spec.enabled,
        }
        return self.save("model", Model, {"name": spec.name}, values, note=note)

    def save_tier(self, spec: TierSpec) -> None:
        if self.mode == "create_missing" and Tier.objects.filter(tenant=None, name=spec.name).exists():
            self.record("tier", spec.name, "kept")
            return
        slots = list(_member_paths(spec))
        members = [self.tier_member(name, at) for name, at, _, _ in slots]
        placed = [
            (member.pk, position, weight)
            for member, (_, _, position, weight) in zip(members, slots, strict=True)
            if member is not None
        ]
        if len(placed) != len(members):
            return
        values = {
            "balancing": spec.balancing,
            "description": spec.description,
            "capabilities": list(spec.capabilities),
            "max_cost_per_million": spec.max_cost_per_million,
            "complexity_max": spec.complexity_max,
            "max_output_tokens": spec.max_output_tokens,
            "enabled": spec.enabled,
        }
        tier, action, changed = self.upsert(Tier, {"tenant": None, "name": spec.name}, values)
        if self.set_members(tier, placed) and action != "created":
            action, changed = "updated", (*changed, "models")
        self.record("tier", spec.name, action, ", ".join(changed))
        cap = spec.max_cost_per_million
        for member in members:
            if cap is not None and member is not None and member.input_cost_per_million > cap:
                self.notes.append(
                    self.config.issue(
                        (*spec.path, "max_cost_per_million"),
                        f"model '{member.name}' costs {member.input_cost_per_million.normalize()} per million input "
                        f"tokens, above this cap of {cap}: it is skipped when routing through '{spec.name}'",
                    )
                )

    def save_policy(self, routing: RoutingSpec) -> None:
        """Set the global policy's strategy and fallback, as far as the file names them."""
        values: dict[str, Any] = {}
        if routing.strategy is not None:
            values["strategy"] = routing.strategy
        if routing.baseline_tier is not None:
            if not self.tier_exists(routing.baseline_tier, routing.tiers):
                self.error(("routing", "baseline_tier"), f"unknown tier '{routing.baseline_tier}'")
                return
            values["baseline_tier"] = routing.baseline_tier
        if routing.fallback is not None:
            fallback = self.fallback_model(routing.fallback)
            if fallback is None:
                return
            values.update(fallback_model_id=fallback.pk, fallback_enabled=routing.fallback.enabled)
        if values:
            self.save("routing policy", RoutingPolicy, {"tenant": None}, values, name="global")

    def save_section(self, spec: SectionSpec) -> None:
        section = self.save("section", ConfigSection, {"name": spec.name}, {"data": spec.data})
        apply = SECTION_APPLIERS.get(spec.name)
        if apply is not None:
            for at, message in apply(spec.data, self.mode):
                self.error((*spec.path, *at), message)
            if not section.applied:
                section.applied = True
                section.save(update_fields=["applied"])
        if not section.applied:
            self.pending_sections.append(spec.name)

    # -- references ----------------------------------------------------------------------------

    def provider(self, name: str, at: KeyPath, *, backup: ProviderSpec | None = None, why: str = "") -> Provider | None:
        """The provider called ``name``; created from ``backup`` if it does not exist yet."""
        provider = Provider.objects.filter(name=name).first()
        if provider is None and backup is not None:
            provider = self.save_provider(backup, note=why)
        if provider is None:
            self.error(at, f"unknown provider '{name}': define it under providers")
        return provider

    @staticmethod
    def tier_exists(name: str, specs: tuple[TierSpec, ...]) -> bool:
        """A global tier ``name`` is in the file or the database."""
        return any(spec.name == name for spec in specs) or Tier.objects.filter(tenant=None, name=name).exists()

    def tier_member(self, name: str, at: KeyPath) -> Model | None:
        """The model a tier names; a placeholder from the bundled defaults if it exists nowhere else."""
        model = Model.objects.filter(name=name).first()
        if model is not None:
            return model
        spec = self.defaults().model(name)
        if spec is None:
            self.error(at, f"unknown model '{name}': define it under models")
            return None
        backup = self.defaults().provider(spec.provider)
        why = f"from the bundled defaults, for model '{name}'"
        if self.provider(spec.provider, at, backup=backup, why=why) is None:
            return None
        return self.save_model(spec, note=f"from the bundled defaults, named by {format_path(at)}")

    def fallback_model(self, spec: FallbackSpec) -> Model | None:
        """The model ``routing.fallback`` names, created as a local model if its provider lacks it."""
        backup = LOCAL_PROVIDER if spec.provider == LOCAL_PROVIDER.name else None
        provider = self.provider(
            spec.provider, (*spec.path, "provider"), backup=backup, why="named by routing.fallback"
        )
        if provider is None:
            return None
        model = find_fallback_model(provider, spec.model)
        if model is not None:
            return model
        elsewhere = Model.objects.filter(name=spec.model).select_related("provider").first()
        if elsewhere is not None:
            message = f"model '{spec.model}' is served by provider '{elsewhere.provider.name}', not '{provider.name}'"
            self.error((*spec.path, "model"), message)
            return None
        default = self.defaults().model(spec.model)
        if default is not None and default.provider == provider.name:
            return self.save_model(default, note="from the bundled defaults, named by routing.fallback")
        local = ModelSpec(name=spec.model, provider=provider.name, upstream_model=spec.model)
        return self.save_model(local, note="local model named by routing.fallback, zero price")

    def defaults(self) -> ConfigFile:
        if self._defaults is None:
            self._defaults = parse_config(DEFAULTS_PATH.read_text(encoding="utf-8"), source=DEFAULTS_SOURCE)
        return self._defaults

    # -- writing -------------------------------------------------------------------------------

    def save(
        self,
        kind: str,
        model: type[_Row],
        lookup: dict[str, Any],
        values: dict[str, Any],
        *,
        name: str = "",
        note: str = "",
    ) -> _Row:
        """Upsert one row and record what happened."""
        row, action, changed = self.upsert(model, lookup, values)
        self.record(kind, name or str(lookup["name"]), action, note if action == "created" else ", ".join(changed))
        return row

    def upsert(
        self, model: type[_Row], lookup: dict[str, Any], values: dict[str, Any]
    ) -> tuple[_Row, Action, tuple[str, ...]]:
        """Create the row matching ``lookup`` or, in upsert mode, update the fields that differ."""
        row = model._default_manager.filter(**lookup).first()
        if row is None:
            return model._default_manager.create(**lookup, **values), "created", ()
        if self.mode == "create_missing":
            return row, "kept", ()
        changed = tuple(field for field, value in values.items() if getattr(row, field) != value)
        if not changed:
            return row, "unchanged", ()
        for field in changed:
            setattr(row, field, values[field])
        row.save()
        return row, "updated", changed

    def set_members(self, tier: Tier, placed: list[tuple[int, int, int]]) -> bool:
        """Make ``placed`` (model id, position, weight) the tier's models; True if that changed anything."""
        current = list(tier.tier_models.values_list("model_id", "position", "weight"))
        if sorted(current) == sorted(placed):
            return False
        tier.tier_models.all().delete()
        for model_id, position, weight in placed:
            TierModel.objects.create(tier=tier, model_id=model_id, position=position, weight=weight)
        return True

    def record(self, kind: str, name: str, action: Action, note: str = "") -> None:
        self.changes.append(Change(kind=kind, name=name, action=action, note=note))

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(self.config.issue(path, message))
