"""Model aliases: the names clients send that are not our model or tier names.

Agents ask for their own built-in names (Claude Code ``claude-opus-…``, Codex
``gpt-…-codex``, seed 002's ``sonnet`` / ``opus`` / ``smartroute``). An alias
maps such a name — exact, or a glob like ``claude-*sonnet*`` — to a model,
a tier, ``auto`` or ``provider:model``. Aliases load with the configuration
snapshot (``register_loader``), so resolving one costs no query.

Rules (``find_alias``): a real model or tier name, ``auto`` and
``provider:model`` are never aliased; the key's tenant's aliases are tried
before the global ones; within each, an exact pattern wins, then globs in
ascending ``position``, the longest pattern first. A target is used as is (no
alias chains), so a typo in a target is a clear 400 naming the alias.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway_platform.config.snapshot import Snapshot, register_loader
from routing.tier_views import tiers_for

EXTENSION = "routing.aliases"
ALIAS_HEADER = "X-Gateway-Alias"
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class AliasInfo:
    pattern: str
    target: str
    position: int = 100
    description: str = ""

    @property
    def is_glob(self) -> bool:
        return any(ch in GLOB_CHARS for ch in self.pattern)

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.pattern) if self.is_glob else name == self.pattern


@dataclass(frozen=True, slots=True)
class AliasList:
    """One scope's aliases: exact names by pattern, globs in the order they are tried."""

    exact: dict[str, AliasInfo] = field(default_factory=dict)
    globs: tuple[tuple[AliasInfo, re.Pattern[str]], ...] = ()

    @classmethod
    def build(cls, aliases: Iterable[AliasInfo]) -> AliasList:
        exact: dict[str, AliasInfo] = {}
        globs: list[AliasInfo] = []
        for alias in aliases:
            if alias.is_glob:
                globs.append(alias)
            else:
                exact[alias.pattern] = alias
        globs.sort(key=lambda a: (a.position, -len(a.pattern), a.pattern))
        compiled = tuple((a, re.compile(fnmatch.translate(a.pattern))) for a in globs)
        return cls(exact=exact, globs=compiled)

    def find(self, name: str) -> AliasInfo | None:
        found = self.exact.get(name)
        if found is not None:
            return found
        for alias, regex in self.globs:
            if regex.fullmatch(name):
                return alias
        return None

    def all(self) -> list[AliasInfo]:
        return [*self.exact.values(), *(alias for alias, _ in self.globs)]


@dataclass(frozen=True, slots=True)
class AliasCatalog:
    global_aliases: AliasList = field(default_factory=AliasList)
    by_tenant: dict[int, AliasList] = field(default_factory=dict)


def catalog(snapshot: Snapshot) -> AliasCatalog:
    """The snapshot's aliases (empty when the loader is not registered, e.g. in unit tests)."""
    value = snapshot.extensions.get(EXTENSION)
    return value if isinstance(value, AliasCatalog) else AliasCatalog()


def is_real_name(snapshot: Snapshot, name: str, tier_names: Collection[str]) -> bool:
    """Names aliases never shadow: models, tiers, ``auto`` and ``provider:model``."""
    return name == "auto" or ":" in name or name in snapshot.models or name in tier_names


def find_alias(snapshot: Snapshot, tenant_id: int | None, name: str, tier_names: Collection[str]) -> AliasInfo | None:
    """The alias ``name`` resolves through for this tenant, or None (pure; no query)."""
    if is_real_name(snapshot, name, tier_names):
        return None
    aliases = catalog(snapshot)
    scoped = aliases.by_tenant.get(tenant_id) if tenant_id is not None else None
    if scoped is not None:
        found = scoped.find(name)
        if found is not None:
            return found
    return aliases.global_aliases.find(name)


def alias_for(snapshot: Snapshot, tenant_id: int | None, name: str) -> AliasInfo | None:
    """``find_alias`` against the tiers this tenant sees."""
    return find_alias(snapshot, tenant_id, name, tiers_for(snapshot, tenant_id).tiers.keys())


def resolved_name(snapshot: Snapshot, tenant_id: int | None, name: str) -> str:
    """``name``, or the target of the alias it matches."""
    alias = alias_for(snapshot, tenant_id, name)
    return alias.target if alias is not None else name


def visible_aliases(snapshot: Snapshot, tenant_id: int | None) -> list[AliasInfo]:
    """The exact-name aliases a tenant's keys see (tenant ones override global ones); globs are not listed."""
    aliases = catalog(snapshot)
    merged = dict(aliases.global_aliases.exact)
    scoped = aliases.by_tenant.get(tenant_id) if tenant_id is not None else None
    if scoped is not None:
        merged.update(scoped.exact)
    return [merged[name] for name in sorted(merged)]


# -- loading (database) ----------------------------------------------------------------------------


def _info(row: Any) -> AliasInfo:
    return AliasInfo(pattern=row.pattern, target=row.target, position=row.position, description=row.description)


def load_aliases() -> AliasCatalog:
    """Every enabled alias (synchronous; runs with each snapshot load)."""
    from routing.models import ModelAlias

    global_rows: list[AliasInfo] = []
    tenant_rows: dict[int, list[AliasInfo]] = {}
    for row in ModelAlias.objects.filter(enabled=True):
        if row.tenant_id is None:
            global_rows.append(_info(row))
        else:
            tenant_rows.setdefault(row.tenant_id, []).append(_info(row))
    return AliasCatalog(
        global_aliases=AliasList.build(global_rows),
        by_tenant={tenant: AliasList.build(rows) for tenant, rows in tenant_rows.items()},
    )


def register() -> None:
    register_loader(EXTENSION, load_aliases)
