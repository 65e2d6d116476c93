"""Skills (seed 002): methodology prompts a request asks for with ``X-Gateway-Skill`` or ``"skill"``.

A skill's prompt is prepended to the request's system prompt (a system message
is inserted when there is none); a skill with a ``forced_tier`` overrides
``auto`` and tier names (``serving.route_plan``). Skills are global rows, and a
tenant row with the same slug replaces the global one for that tenant's keys
(a disabled tenant row hides it). They are served from the configuration
snapshot (``register_loader``), never queried per request.

The eight seed skills live in ``routing/defaults/skills.yaml``;
``skills_seed_defaults`` creates the missing ones and never touches existing rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from gateway_platform.config.snapshot import Snapshot, register_loader
from gateway_platform.errors import invalid_request

logger = logging.getLogger(__name__)

EXTENSION = "routing.skills"
SKILL_HEADER = b"x-gateway-skill"
DEFAULTS_PATH = Path(__file__).resolve().parent / "defaults" / "skills.yaml"
SYSTEM_ROLES = ("system", "developer")


@dataclass(frozen=True, slots=True)
class SkillInfo:
    """A skill as the hot path reads it."""

    slug: str
    name: str
    description: str
    system_prompt: str
    forced_tier: str = ""
    enabled: bool = True

    def listing(self) -> dict[str, Any]:
        """The skill as ``GET /v1/skills`` shows it."""
        return {
            "id": self.slug,
            "name": self.name,
            "description": self.description,
            "forced_tier": self.forced_tier or None,
        }


@dataclass(frozen=True, slots=True)
class SkillCatalog:
    """Global skills and each tenant's own rows (overrides or additions), by slug."""

    global_skills: Mapping[str, SkillInfo] = field(default_factory=dict)
    by_tenant: Mapping[int, Mapping[str, SkillInfo]] = field(default_factory=dict)

    def get(self, tenant_id: int | None, slug: str) -> SkillInfo | None:
        """The enabled skill ``slug`` as the tenant sees it (a tenant row wins, even a disabled one)."""
        own = self.by_tenant.get(tenant_id, {}) if tenant_id is not None else {}
        skill = own.get(slug) or self.global_skills.get(slug)
        return skill if skill is not None and skill.enabled else None

    def visible(self, tenant_id: int | None) -> list[SkillInfo]:
        """Every enabled skill the tenant sees, by slug."""
        merged = dict(self.global_skills)
        if tenant_id is not None:
            merged.update(self.by_tenant.get(tenant_id, {}))
        return sorted((s for s in merged.values() if s.enabled), key=lambda s: s.slug)


def catalog(snapshot: Snapshot) -> SkillCatalog:
    found = snapshot.extensions.get(EXTENSION)
    return found if isinstance(found, SkillCatalog) else SkillCatalog()


def usable_skills(snapshot: Snapshot, tenant_id: int | None, may_use_tier: Callable[[str], bool]) -> list[SkillInfo]:
    """The skills a key can use: enabled, and not forcing a tier the key may not use."""
    return [s for s in catalog(snapshot).visible(tenant_id) if not s.forced_tier or may_use_tier(s.forced_tier)]


def find_skill(snapshot: Snapshot, tenant_id: int | None, slug: str, may_use_tier: Callable[[str], bool]) -> SkillInfo:
    """The skill ``slug``; a 400 ``skill_not_found`` listing the available skills if it is unknown or disabled."""
    skill = catalog(snapshot).get(tenant_id, slug)
    if skill is not None:
        return skill
    available = ", ".join(s.slug for s in usable_skills(snapshot, tenant_id, may_use_tier)) or "none"
    raise invalid_request(
        f"Unknown or disabled skill '{slug}'. Available skills: {available}.", param="skill", code="skill_not_found"
    )


def requested_skill(headers: Mapping[bytes, bytes], body_skill: str | None) -> str | None:
    """The skill slug a request asks for: the ``"skill"`` body field, else the ``X-Gateway-Skill`` header."""
    if body_skill is not None and body_skill.strip():
        return body_skill.strip()
    raw = headers.get(SKILL_HEADER)
    value = raw.decode("latin-1").strip() if raw else ""
    return value or None


def with_skill(body: dict[str, Any], skill: SkillInfo) -> dict[str, Any]:
    """``body`` with the skill's prompt prepended to its leading system prompt (pure; ``body`` is not changed)."""
    prompt = skill.system_prompt.strip()
    messages = list(body.get("messages") or [])
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") in SYSTEM_ROLES:
        content = first.get("content")
        if isinstance(content, list):
            merged: str | list[Any] = [{"type": "text", "text": prompt}, *content]
        else:
            merged = f"{prompt}\n\n{content}" if content else prompt
        messages[0] = {**first, "content": merged}
    else:
        messages.insert(0, {"role": "system", "content": prompt})
    return {**body, "messages": messages}


# -- loading and seeding (database) ----------------------------------------------------------------


def _info(row: Any) -> SkillInfo:
    return SkillInfo(
        slug=row.slug,
        name=row.name,
        description=row.description,
        system_prompt=row.system_prompt,
        forced_tier=row.forced_tier,
        enabled=row.enabled,
    )


def load_skills() -> SkillCatalog:
    """Every skill row (synchronous; runs with each snapshot load)."""
    from routing.models import Skill

    global_skills: dict[str, SkillInfo] = {}
    by_tenant: dict[int, dict[str, SkillInfo]] = {}
    for row in Skill.objects.all():
        if row.tenant_id is None:
            global_skills[row.slug] = _info(row)
        else:
            by_tenant.setdefault(row.tenant_id, {})[row.slug] = _info(row)
    return SkillCatalog(global_skills=global_skills, by_tenant=by_tenant)


@dataclass(frozen=True, slots=True)
class SkillSeedReport:
    created: tuple[str, ...]
    kept: tuple[str, ...]

    def summary_lines(self) -> list[str]:
        counts = [f"{len(slugs)} {label}" for label, slugs in (("created", self.created), ("kept", self.kept)) if slugs]
        return [f"  skills: {', '.join(counts)}"] if counts else []


def default_skills() -> list[dict[str, Any]]:
    """The bundled skill definitions (``routing/defaults/skills.yaml``)."""
    data = yaml.safe_load(DEFAULTS_PATH.read_text(encoding="utf-8"))
    return list(data["skills"])


def skills_seed_defaults() -> SkillSeedReport:
    """Create the bundled global skills that do not exist; existing rows (admin edits) are left alone."""
    from routing.models import Skill

    created: list[str] = []
    kept: list[str] = []
    with transaction.atomic():
        for entry in default_skills():
            values = {k: entry.get(k) or "" for k in ("name", "description", "system_prompt", "forced_tier")}
            _, was_created = Skill.objects.get_or_create(tenant=None, slug=entry["slug"], defaults=values)
            (created if was_created else kept).append(entry["slug"])
    if created:
        logger.info("default skills created", extra={"skills": created})
    return SkillSeedReport(created=tuple(created), kept=tuple(kept))


def register() -> None:
    register_loader(EXTENSION, load_skills)
