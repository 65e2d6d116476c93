"""The config file's ``caching:`` section (seed 000) applied to the global ``CachePolicy``.

Seed 000 writes ``enabled``, ``semantic_threshold``, ``ttl`` and
``max_entries``; the other policy fields may be given by their model names.
``import_config`` updates the global policy with the keys the section names;
``seed_defaults`` (``create_missing``) only creates it when it does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routing.config_file.apply import ImportMode, register_section
from routing.config_file.yaml_lines import KeyPath

SECTION = "caching"


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("expected a number")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a whole number of at least 0")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return list(value)


# Section key -> (CachePolicy field, converter).
FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "enabled": ("enabled", _bool),
    "semantic_enabled": ("semantic_enabled", _bool),
    "semantic_threshold": ("semantic_threshold", _number),
    "ttl": ("ttl_seconds", _count),
    "max_entries": ("max_entries", _count),
    "max_temperature": ("max_temperature", _number),
    "tools_rule": ("tools_rule", _text),
    "read_only_tools": ("read_only_tools", _names),
    "cacheable_routes": ("cacheable_routes", _names),
    "cacheable_models": ("cacheable_models", _names),
    "embedder": ("embedder", _text),
    "embedding_model": ("embedding_model", _text),
    "embedding_dimensions": ("embedding_dimensions", _count),
}


def apply_caching_section(data: Any, mode: ImportMode) -> list[tuple[KeyPath, str]]:
    """Write the section into the global cache policy; the problems found, by key path."""
    from django.core.exceptions import ValidationError

    from caching.models import CachePolicy

    if not isinstance(data, dict):
        return [((), "expected a mapping")]
    values: dict[str, Any] = {}
    problems: list[tuple[KeyPath, str]] = []
    for key, raw in data.items():
        if key not in FIELDS:
            problems.append(((key,), f"unknown key; expected one of {', '.join(FIELDS)}"))
            continue
        field, convert = FIELDS[key]
        try:
            values[field] = convert(raw)
        except ValueError as exc:
            problems.append(((key,), str(exc)))
    if problems:
        return problems
    policy = CachePolicy.objects.filter(tenant=None).first()
    if policy is not None and mode == "create_missing":
        return []
    policy = policy or CachePolicy(tenant=None)
    for field, value in values.items():
        setattr(policy, field, value)
    try:
        policy.full_clean(exclude=["tenant"])
    except ValidationError as exc:
        return [((_section_key(field),), "; ".join(messages)) for field, messages in exc.message_dict.items()]
    policy.save()
    return []


def _section_key(field: str) -> str:
    return next((key for key, (name, _) in FIELDS.items() if name == field), field)


def register() -> None:
    register_section(SECTION, apply_caching_section)
