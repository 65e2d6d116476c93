"""The gateway config file's schema: typed specs and pure validation (no database access).

``parse_config`` turns YAML text into a ``ConfigFile`` of frozen specs or raises
``ConfigError`` listing every problem with its key path and line. Unknown keys
become warnings on the ``ConfigFile``: reported, never silently dropped.
Names that refer to other entries (a tier's models, a model's provider) are
checked when the file is applied, because they may also name database rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models as db

from providers.models import Model, Provider, validate_extra_headers
from routing.config_file.values import ValueReader, describe
from routing.config_file.yaml_lines import ConfigError, Issue, KeyPath, LoadedYaml, format_path, load_yaml
from routing.models import Balancing, RoutingPolicy, Tier

SECTIONS = ("server", "caching", "mcp", "security", "aliases")  # stored verbatim; applied by registered features
TOP_LEVEL_KEYS = ("providers", "models", "routing", *SECTIONS)
CAPABILITY_MAX_LENGTH = 100  # Tier.capabilities is an array of CharField(max_length=100)

_S = TypeVar("_S")


def _field(model: type[db.Model], name: str) -> db.Field[Any, Any]:
    model_field = model._meta.get_field(name)
    assert isinstance(model_field, db.Field)
    return model_field


def field_default(model: type[db.Model], name: str) -> Any:
    """The default of ``model.name``, so specs and export agree with the model definitions."""
    return _field(model, name).get_default()


def max_length(model: type[db.Model], name: str) -> int:
    length = _field(model, name).max_length
    assert length is not None
    return length


@dataclass(frozen=True)
class ProviderSpec:
    """One entry of ``providers:``."""

    name: str
    kind: str
    base_url: str
    api_key_env: str = ""
    api_version: str = ""
    region: str = ""
    supports_responses: bool = False
    extra_headers: tuple[tuple[str, str], ...] = ()  # (header, ENV_VAR_NAME)
    connect_timeout: float = field_default(Provider, "connect_timeout")
    read_timeout: float = field_default(Provider, "read_timeout")
    total_timeout: float = field_default(Provider, "total_timeout")
    max_connections: int = field_default(Provider, "max_connections")
    enabled: bool = True
    path: KeyPath = field(default=(), compare=False)


@dataclass(frozen=True)
class ModelSpec:
    """One entry of ``models:``: a public model name served by a provider."""

    name: str
    provider: str
    upstream_model: str
    input_cost_per_million: Decimal = Decimal(0)
    output_cost_per_million: Decimal = Decimal(0)
    # Provider prompt caching; unset: those tokens cost the input price.
    cache_read_cost_per_million: Decimal | None = None
    cache_write_cost_per_million: Decimal | None = None
    context_window: int = field_default(Model, "context_window")
    max_output_tokens: int | None = None
    enabled: bool = True
    path: KeyPath = field(default=(), compare=False)


Position = tuple[tuple[str, int], ...]  # a tier position: (model name, weight) of each model sharing it
POSITION_KEYS = ("model", "weight")


@dataclass(frozen=True)
class TierSpec:
    """One entry of ``routing.tiers``: ``model`` is the primary position, ``fallbacks`` follow in order.

    Each position is a model name, or a list of ``{model, weight}`` that share it (load balanced by
    ``balancing``: weighted, least-busy or latency).
    """

    name: str
    model: Position | None
    fallbacks: tuple[Position, ...] = ()
    balancing: str = field_default(Tier, "balancing")
    description: str = ""
    capabilities: tuple[str, ...] = ()
    max_cost_per_million: Decimal | None = None
    complexity_max: float | None = None  # upper edge of the tier's `auto` band, in (0, 1]
    max_output_tokens: int | None = None
    enabled: bool = True
    path: KeyPath = field(default=(), compare=False)

    @property
    def positions(self) -> tuple[Position, ...]:
        """The tier's positions in order, the primary first."""
        return ((self.model,) if self.model else ()) + self.fallbacks

    @property
    def model_names(self) -> tuple[str, ...]:
        """The tier's models in position order."""
        return tuple(name for position in self.positions for name, _ in position)


@dataclass(frozen=True)
class FallbackSpec:
    """``routing.fallback``: a provider and a model (public name or the provider's upstream id)."""

    provider: str
    model: str
    enabled: bool = True
    path: KeyPath = field(default=(), compare=False)


@dataclass(frozen=True)
class RoutingSpec:
    """``routing:``. ``strategy`` and ``fallback`` are None when the file leaves them out."""

    strategy: str | None = None
    baseline_tier: str | None = None  # the tier savings are measured against
    tiers: tuple[TierSpec, ...] = ()
    fallback: FallbackSpec | None = None


@dataclass(frozen=True)
class SectionSpec:
    """A top-level section stored verbatim (JSON-compatible) until its feature exists."""

    name: str
    data: Any
    path: KeyPath = field(default=(), compare=False)


def _keys(spec: type) -> tuple[str, ...]:
    """The file keys of a spec: its fields except the bookkeeping ``path``."""
    return tuple(f.name for f in fields(spec) if f.name != "path")


PROVIDER_KEYS = _keys(ProviderSpec)
MODEL_KEYS = _keys(ModelSpec)
TIER_KEYS = _keys(TierSpec)
FALLBACK_KEYS = _keys(FallbackSpec)
ROUTING_KEYS = _keys(RoutingSpec)


@dataclass(frozen=True)
class ConfigFile:
    """A validated config file. ``warnings`` lists what was ignored (unknown keys)."""

    source: str
    providers: tuple[ProviderSpec, ...] = ()
    models: tuple[ModelSpec, ...] = ()
    routing: RoutingSpec | None = None
    sections: tuple[SectionSpec, ...] = ()
    warnings: tuple[Issue, ...] = ()
    document: LoadedYaml = field(default_factory=lambda: LoadedYaml(data=None), compare=False, repr=False)

    def issue(self, path: KeyPath, message: str) -> Issue:
        """An ``Issue`` at ``path`` with its line in this file."""
        return Issue(format_path(path), self.document.line(path), message)

    def provider(self, name: str) -> ProviderSpec | None:
        return next((spec for spec in self.providers if spec.name == name), None)

    def model(self, name: str) -> ModelSpec | None:
        return next((spec for spec in self.models if spec.name == name), None)


def parse_config(text: str, *, source: str = "<string>") -> ConfigFile:
    """Parse and validate config-file ``text``; raise ``ConfigError`` listing every problem."""
    document = load_yaml(text, source=source)
    reader = _Reader(document)
    config = reader.config_file(source)
    if reader.errors:
        raise ConfigError(sorted(reader.errors, key=_by_line), source)
    return config


def _by_line(issue: Issue) -> int:
    return issue.line or 0


class _Reader(ValueReader):
    """Reads a loaded YAML document into specs."""

    # -- the file ------------------------------------------------------------------------------

    def config_file(self, source: str) -> ConfigFile:
        if self.document.data is None:
            return ConfigFile(source=source, document=self.document)
        top = self.mapping(self.document.data, (), known=TOP_LEVEL_KEYS)
        if top is None:
            return ConfigFile(source=source, document=self.document)
        providers = self.entries(top, "providers", self.provider)
        models = self.entries(top, "models", self.model)
        routing = self.routing(top["routing"]) if top.get("routing") is not None else None
        sections = tuple(self.sections(top))
        self.unique(providers, "provider")
        self.unique(models, "model")
        if routing is not None:
            self.unique(routing.tiers, "tier")
        return ConfigFile(
            source=source,
            providers=providers,
            models=models,
            routing=routing,
            sections=sections,
            warnings=tuple(sorted(self.warnings, key=_by_line)),
            document=self.document,
        )

    def entries(
        self, parent: dict[str, Any], key: str, read: Callable[[object, KeyPath], _S | None], path: KeyPath = ()
    ) -> tuple[_S, ...]:
        """Read the list ``parent[key]`` item by item with ``read(raw, path)``, dropping invalid items."""
        here = (*path, key)
        items = self.sequence(parent.get(key), here)
        specs = (read(item, (*here, index)) for index, item in enumerate(items))
        return tuple(spec for spec in specs if spec is not None)

    def unique(self, specs: Iterable[ProviderSpec | ModelSpec | TierSpec], kind: str) -> None:
        first: dict[str, KeyPath] = {}
        for spec in specs:
            if spec.name in first:
                line = self.document.line(first[spec.name])
                self.error((*spec.path, "name"), f"duplicate {kind} name '{spec.name}' (first at line {line})")
            else:
                first[spec.name] = spec.path

    # -- entries -------------------------------------------------------------------------------

    def provider(self, raw: object, path: KeyPath) -> ProviderSpec | None:
        entry = self.mapping(raw, path, known=PROVIDER_KEYS, required=("name", "kind", "base_url"))
        if entry is None:
            return None
        errors = len(self.errors)
        spec = ProviderSpec(
            name=self.slug(entry, path, "name", max_length(Provider, "name")),
            kind=self.choice(entry, path, "kind", Provider.Kind.values, default=""),
            base_url=self.url(entry, path, "base_url", max_length(Provider, "base_url")),
            api_key_env=self.env_var(entry, path, "api_key_env", max_length(Provider, "api_key_env")),
            api_version=self.text(entry, path, "api_version", max_length=max_length(Provider, "api_version")),
            region=self.text(entry, path, "region", max_length=max_length(Provider, "region")),
            supports_responses=self.boolean(entry, path, "supports_responses", default=False),
            extra_headers=self.extra_headers(entry, path),
            connect_timeout=self.seconds(entry, path, "connect_timeout", ProviderSpec.connect_timeout),
            read_timeout=self.seconds(entry, path, "read_timeout", ProviderSpec.read_timeout),
            total_timeout=self.seconds(entry, path, "total_timeout", ProviderSpec.total_timeout),
            max_connections=self.integer(entry, path, "max_connections", ProviderSpec.max_connections),
            enabled=self.boolean(entry, path, "enabled"),
            path=path,
        )
        return spec if len(self.errors) == errors else None

    def extra_headers(self, entry: dict[str, Any], path: KeyPath) -> tuple[tuple[str, str], ...]:
        """``extra_headers: {Header-Name: ENV_VAR_NAME}`` (names only: values come from the environment)."""
        raw = entry.get("extra_headers")
        if raw is None:
            return ()
        try:
            validate_extra_headers(raw)
        except ValidationError as exc:
            self.error((*path, "extra_headers"), exc.messages[0])
            return ()
        return tuple(sorted(raw.items()))

    def model(self, raw: object, path: KeyPath) -> ModelSpec | None:
        entry = self.mapping(raw, path, known=MODEL_KEYS, required=("name", "provider"))
        if entry is None:
            return None
        errors = len(self.errors)
        name = self.text(entry, path, "name", max_length=max_length(Model, "name"))
        spec = ModelSpec(
            name=name,
            provider=self.text(entry, path, "provider"),
            upstream_model=self.text(
                entry, path, "upstream_model", default=name, max_length=max_length(Model, "upstream_model")
            ),
            input_cost_per_million=self.price(entry, path, "input_cost_per_million", Decimal(0)),
            output_cost_per_million=self.price(entry, path, "output_cost_per_million", Decimal(0)),
            cache_read_cost_per_million=self.price(entry, path, "cache_read_cost_per_million", None),
            cache_write_cost_per_million=self.price(entry, path, "cache_write_cost_per_million", None),
            context_window=self.integer(entry, path, "context_window", ModelSpec.context_window),
            max_output_tokens=self.integer(entry, path, "max_output_tokens", None),
            enabled=self.boolean(entry, path, "enabled"),
            path=path,
        )
        return spec if len(self.errors) == errors else None

    def tier(self, raw: object, path: KeyPath) -> TierSpec | None:
        entry = self.mapping(raw, path, known=TIER_KEYS, required=("name",))
        if entry is None:
            return None
        errors = len(self.errors)
        spec = TierSpec(
            name=self.slug(entry, path, "name", max_length(Tier, "name")),
            model=self.position(entry.get("model"), (*path, "model")),
            fallbacks=self.fallback_positions(entry, path),
            balancing=self.choice(entry, path, "balancing", Balancing.values, default=TierSpec.balancing),
            description=self.text(entry, path, "description", allow_empty=True),
            capabilities=self.strings(entry, path, "capabilities", max_length=CAPABILITY_MAX_LENGTH),
            max_cost_per_million=self.price(entry, path, "max_cost_per_million", None),
            complexity_max=self.band_edge(entry, path, "complexity_max"),
            max_output_tokens=self.integer(entry, path, "max_output_tokens", None),
            enabled=self.boolean(entry, path, "enabled"),
            path=path,
        )
        if spec.fallbacks and spec.model is None:
            self.error((*path, "model"), "required when fallbacks are given")
        elif spec.model is None:
            self.warn((*path, "model"), "missing — the tier has no models, so requests to it will fail")
        if len(set(spec.model_names)) != len(spec.model_names):
            self.error((*path, "fallbacks"), "a model may appear only once in a tier")
        return spec if len(self.errors) == errors else None

    def position(self, raw: object, path: KeyPath) -> Position | None:
        """A tier position: a model name, or a non-empty list of ``{model, weight}`` (weights at least 1)."""
        if raw is None:
            return None
        if isinstance(raw, str):
            if not raw.strip():
                self.error(path, "must not be empty")
                return None
            return ((raw, 1),)
        if not isinstance(raw, list) or not raw:
            self.error(path, f"expected a model name or a list of {{model, weight}}, got {describe(raw)}")
            return None
        members: list[tuple[str, int]] = []
        for index, item in enumerate(raw):
            here = (*path, index)
            entry = self.mapping(item, here, known=POSITION_KEYS, required=("model",))
            if entry is None:
                continue
            name = self.text(entry, here, "model", max_length=max_length(Model, "name"))
            weight = self.integer(entry, here, "weight", 1)
            if name:
                members.append((name, weight))
        return tuple(members) if len(members) == len(raw) else None

    def fallback_positions(self, entry: dict[str, Any], path: KeyPath) -> tuple[Position, ...]:
        here = (*path, "fallbacks")
        positions: list[Position] = []
        for index, item in enumerate(self.sequence(entry.get("fallbacks"), here)):
            if item is None:
                self.error((*here, index), "expected a model name or a list of {model, weight}, got nothing")
                continue
            position = self.position(item, (*here, index))
            if position is not None:
                positions.append(position)
        return tuple(positions)

    def band_edge(self, entry: dict[str, Any], path: KeyPath, key: str) -> float | None:
        """A complexity score bound: a number in (0, 1]."""
        value = self.number(entry, path, key)
        if value is None:
            return None
        if not 0 < value <= 1:
            self.error((*path, key), "must be greater than 0 and at most 1")
            return None
        return float(value)

    def routing(self, raw: object) -> RoutingSpec | None:
        path: KeyPath = ("routing",)
        entry = self.mapping(raw, path, known=ROUTING_KEYS)
        if entry is None:
            return None
        fallback = entry.get("fallback")
        return RoutingSpec(
            strategy=self.choice(entry, path, "strategy", RoutingPolicy.Strategy.values, default=None),
            baseline_tier=self.slug(entry, path, "baseline_tier", max_length(RoutingPolicy, "baseline_tier")) or None,
            tiers=self.entries(entry, "tiers", self.tier, path),
            fallback=self.fallback(fallback, (*path, "fallback")) if fallback is not None else None,
        )

    def fallback(self, raw: object, path: KeyPath) -> FallbackSpec | None:
        entry = self.mapping(raw, path, known=FALLBACK_KEYS, required=("provider", "model"))
        if entry is None:
            return None
        errors = len(self.errors)
        spec = FallbackSpec(
            provider=self.text(entry, path, "provider", max_length=max_length(Provider, "name")),
            model=self.text(entry, path, "model", max_length=max_length(Model, "name")),
            enabled=self.boolean(entry, path, "enabled"),
            path=path,
        )
        return spec if len(self.errors) == errors else None

    def sections(self, top: dict[str, Any]) -> Iterable[SectionSpec]:
        for name in SECTIONS:
            if name not in top:
                continue
            if top[name] is None:
                self.warn((name,), "empty section — not stored")
            elif self.json_compatible(top[name], (name,)):
                yield SectionSpec(name=name, data=top[name], path=(name,))
