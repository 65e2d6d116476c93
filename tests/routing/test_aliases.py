"""Model aliases: matching rules (pure), the snapshot loader and the config file section (database)."""

from __future__ import annotations

import pytest

from routing.aliases import EXTENSION, AliasCatalog, AliasInfo, AliasList, find_alias, load_aliases, visible_aliases
from routing.aliases.section import apply_aliases_section
from routing.models import ModelAlias
from tests.factories import make_team
from tests.routing.memory_snapshot import snapshot

TIERS = ("simple_ops", "code_gen", "complex_reasoning")


def aliases(*entries: AliasInfo, tenant: dict[int, list[AliasInfo]] | None = None) -> object:
    catalog = AliasCatalog(
        global_aliases=AliasList.build(entries),
        by_tenant={tid: AliasList.build(rows) for tid, rows in (tenant or {}).items()},
    )
    return snapshot(extensions={EXTENSION: catalog})


def target(snap: object, name: str, tenant_id: int | None = 1) -> str | None:
    found = find_alias(snap, tenant_id, name, TIERS)  # type: ignore[arg-type]
    return found.target if found else None


def test_it_prefers_exact_names_then_globs_by_position_and_length() -> None:
    snap = aliases(
        AliasInfo("claude-*", "auto", position=200),
        AliasInfo("claude-*opus*", "complex_reasoning", position=100),
        AliasInfo("claude-*sonnet*", "code_gen", position=100),
        AliasInfo("claude-opus-legacy", "simple_ops"),
        AliasInfo("gpt-?-codex*", "code_gen"),
    )
    assert target(snap, "claude-opus-5-5") == "complex_reasoning"
    assert target(snap, "claude-sonnet-4-5-20250929") == "code_gen"
    assert target(snap, "claude-haiku-4-5") == "auto"
    assert target(snap, "claude-opus-legacy") == "simple_ops"
    assert target(snap, "gpt-5-codex-max") == "code_gen"
    assert target(snap, "gpt-5.5-codex") is None  # ? is one character
    assert target(snap, "Claude-opus") is None  # case-sensitive, like model names


def test_it_never_shadows_real_models_tiers_auto_or_explicit_providers() -> None:
    snap = aliases(AliasInfo("*", "simple_ops"))
    for name in ("cheap-model", "code_gen", "auto", "mockai:cheap-model"):
        assert target(snap, name) is None
    assert target(snap, "anything-else") == "simple_ops"


def test_a_tenant_alias_overrides_a_global_one_for_that_tenant_only() -> None:
    snap = aliases(AliasInfo("sonnet", "code_gen"), tenant={7: [AliasInfo("sonnet", "complex_reasoning")]})
    assert target(snap, "sonnet", tenant_id=7) == "complex_reasoning"
    assert target(snap, "sonnet", tenant_id=8) == "code_gen"
    assert [a.target for a in visible_aliases(snap, 7)] == ["complex_reasoning"]  # type: ignore[arg-type]


@pytest.mark.django_db
def test_the_config_section_upserts_and_the_loader_reads_enabled_rows() -> None:
    tenant = make_team("acme").tenant
    problems = apply_aliases_section(
        [
            {"pattern": "sonnet", "target": "code_gen"},
            {"pattern": "claude-*", "target": "auto", "position": 500},
            {"pattern": "opus", "target": "complex_reasoning", "tenant": "acme", "enabled": False},
        ],
        "upsert",
    )
    assert problems == []
    assert apply_aliases_section([{"pattern": "sonnet", "target": "simple_ops"}], "create_missing") == []
    assert ModelAlias.objects.get(tenant=None, pattern="sonnet").target == "code_gen"  # seeding keeps edits
    apply_aliases_section([{"pattern": "sonnet", "target": "simple_ops"}], "upsert")
    assert ModelAlias.objects.get(tenant=None, pattern="sonnet").target == "simple_ops"
    catalog = load_aliases()
    assert catalog.global_aliases.find("claude-x") is not None
    assert tenant.pk not in catalog.by_tenant  # the tenant's only alias is disabled


@pytest.mark.django_db
def test_the_config_section_reports_every_problem_by_path() -> None:
    problems = apply_aliases_section(
        [{"pattern": "", "target": "x"}, "nope", {"pattern": "a", "target": "b", "tenant": "ghost", "colour": 1}],
        "upsert",
    )
    paths = {path for path, _ in problems}
    assert paths == {(0, "pattern"), (1,), (2, "colour"), (2, "tenant")}
    assert not ModelAlias.objects.exists()
    assert apply_aliases_section({"sonnet": "code_gen"}, "upsert") == [((), "expected a list of aliases")]


@pytest.mark.django_db
def test_seeded_defaults_include_the_agent_aliases_and_export_round_trips() -> None:
    from routing.config_file import config_export, config_import, config_seed_defaults

    config_seed_defaults()
    seeded = {row.pattern: row.target for row in ModelAlias.objects.filter(tenant=None)}
    assert seeded["claude-*opus*"] == "complex_reasoning"
    assert seeded["gpt-*codex*"] == "code_gen"
    assert seeded["smartroute"] == "auto"
    row = ModelAlias.objects.get(pattern="sonnet")
    row.target = "simple_ops"  # an admin edit shows up in the export
    row.save()
    exported = config_export()
    assert "- pattern: sonnet\n    target: simple_ops" in exported
    ModelAlias.objects.all().delete()
    config_import(text=exported, source="export.yaml", mode="upsert")
    assert ModelAlias.objects.get(pattern="sonnet").target == "simple_ops"
    assert ModelAlias.objects.count() == len(seeded)
