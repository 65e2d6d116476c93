"""The config file's ``aliases:`` section: global (or per tenant) model aliases.

```yaml
aliases:
  - {pattern: sonnet, target: code_gen}
  - {pattern: "claude-*opus*", target: complex_reasoning, position: 10}
  - {pattern: "gpt-*codex*", target: code_gen, tenant: acme}
```

Entries upsert by (tenant, pattern); nothing is deleted. In ``create_missing``
mode (``seed_defaults``) existing aliases — admin edits — are left alone.
"""

from __future__ import annotations

from typing import Any

from routing.config_file.apply import ImportMode, register_section
from routing.config_file.yaml_lines import KeyPath

SECTION = "aliases"
KEYS = ("pattern", "target", "position", "description", "tenant", "enabled")
Problems = list[tuple[KeyPath, str]]
DEFAULT_POSITION = 100


def _entry_problems(index: int, entry: Any) -> Problems:
    if not isinstance(entry, dict):
        return [((index,), "expected a mapping with pattern and target")]
    problems: Problems = [
        ((index, key), f"unknown key; expected one of {', '.join(KEYS)}") for key in entry if key not in KEYS
    ]
    for key in ("pattern", "target"):
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            problems.append(((index, key), "expected a non-empty name of at most 200 characters"))
    position = entry.get("position", 100)
    if isinstance(position, bool) or not isinstance(position, int):
        problems.append(((index, "position"), "expected a whole number"))
    for key in ("description", "tenant"):
        if key in entry and not isinstance(entry[key], str):
            problems.append(((index, key), "expected a string"))
    if "enabled" in entry and not isinstance(entry["enabled"], bool):
        problems.append(((index, "enabled"), "expected true or false"))
    return problems


def apply_aliases_section(data: Any, mode: ImportMode) -> Problems:
    """Upsert the section's aliases; the problems found, by key path (nothing is written if any)."""
    from routing.models import ModelAlias
    from tenants.models import Tenant

    if not isinstance(data, list):
        return [((), "expected a list of aliases")]
    problems: Problems = []
    for index, entry in enumerate(data):
        problems.extend(_entry_problems(index, entry))
    tenants: dict[str, Any] = {}
    for index, entry in enumerate(data):
        slug = entry.get("tenant") if isinstance(entry, dict) else None
        if isinstance(slug, str) and slug not in tenants:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                problems.append(((index, "tenant"), f"no tenant with slug '{slug}'"))
            tenants[slug] = tenant
    if problems:
        return problems
    for entry in data:
        tenant = tenants.get(entry["tenant"]) if "tenant" in entry else None
        values = {
            "target": entry["target"].strip(),
            "position": entry.get("position", DEFAULT_POSITION),
            "description": entry.get("description", ""),
            "enabled": entry.get("enabled", True),
        }
        row = ModelAlias.objects.filter(tenant=tenant, pattern=entry["pattern"].strip()).first()
        if row is None:
            ModelAlias.objects.create(tenant=tenant, pattern=entry["pattern"].strip(), **values)
        elif mode == "upsert" and any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.save()
    return []


def export_aliases() -> list[dict[str, Any]]:
    """Every alias row in the section's schema (what ``export_config`` writes)."""
    from routing.models import ModelAlias

    entries: list[dict[str, Any]] = []
    for row in ModelAlias.objects.select_related("tenant").order_by("tenant__slug", "position", "pattern"):
        entry: dict[str, Any] = {"pattern": row.pattern, "target": row.target}
        if row.position != DEFAULT_POSITION:
            entry["position"] = row.position
        if row.description:
            entry["description"] = row.description
        if row.tenant is not None:
            entry["tenant"] = row.tenant.slug
        if not row.enabled:
            entry["enabled"] = False
        entries.append(entry)
    return entries


def register() -> None:
    register_section(SECTION, apply_aliases_section, export_aliases)
