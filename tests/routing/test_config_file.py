"""Config as code: parsing, validation, import/export round trips and the management commands."""

from __future__ import annotations

import io
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from providers.models import Model, Provider
from routing.config_file import (
    DEFAULTS_PATH,
    ConfigError,
    config_export,
    config_import,
    config_seed_defaults,
    parse_config,
)
from routing.config_file.yaml_lines import format_path
from routing.models import ConfigSection, RoutingPolicy, Tier, TierModel

BASE_DIR = Path(__file__).resolve().parents[2]
SEED_TEMPLATE = (BASE_DIR / "docs/examples/seed-000-gateway-config.yaml").read_text(encoding="utf-8")
DEFAULTS = DEFAULTS_PATH.read_text(encoding="utf-8")


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def parse_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        parse_config(yaml_text(text))
    return excinfo.value


def row_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Provider, Model, Tier, TierModel, RoutingPolicy, ConfigSection)
    }


def db_state() -> dict[str, Any]:
    """Everything an import can set, keyed by names (never by primary keys)."""
    return {
        "providers": list(
            Provider.objects.order_by("name").values(
                "name",
                "kind",
                "base_url",
                "api_key_env",
                "connect_timeout",
                "read_timeout",
                "total_timeout",
                "max_connections",
                "enabled",
            )
        ),
        "models": list(
            Model.objects.order_by("name").values(
                "name",
                "provider__name",
                "upstream_model",
                "input_cost_per_million",
                "output_cost_per_million",
                "context_window",
                "max_output_tokens",
                "enabled",
            )
        ),
        "tiers": [
            (
                tier.name,
                tier.description,
                tier.capabilities,
                tier.max_cost_per_million,
                tier.enabled,
                [member.model.name for member in tier.tier_models.order_by("position")],
            )
            for tier in Tier.objects.order_by("name")
        ],
        "policy": list(
            RoutingPolicy.objects.filter(tenant=None).values("strategy", "fallback_model__name", "fallback_enabled")
        ),
        "sections": list(ConfigSection.objects.order_by("name").values("name", "data", "applied")),
    }


def tier_models(name: str) -> list[str]:
    return [member.model.name for member in TierModel.objects.filter(tier__name=name).order_by("position")]


# -- parsing (no database) -------------------------------------------------------------------------


def test_format_path() -> None:
    assert format_path(("routing", "tiers", 1, "max_cost_per_million")) == "routing.tiers[1].max_cost_per_million"
    assert format_path(("providers", 0)) == "providers[0]"
    assert format_path(()) == ""


def test_seed_template_parses_without_warnings() -> None:
    config = parse_config(SEED_TEMPLATE)

    assert config.warnings == ()
    assert config.routing is not None
    assert config.routing.strategy == "cost_optimized"
    assert [(t.name, t.model, t.max_cost_per_million) for t in config.routing.tiers] == [
        ("simple_ops", (("deepseek-v3", 1),), Decimal("0.15")),  # a position: one model, weight 1
        ("code_gen", (("sonnet-4.5", 1),), Decimal("3.0")),
        ("complex_reasoning", (("gpt-5.5", 1),), Decimal("15.0")),
    ]
    assert config.routing.tiers[0].capabilities == ("file_ops", "grep", "basic_parsing")
    assert config.routing.fallback is not None
    assert (config.routing.fallback.provider, config.routing.fallback.model) == ("ollama", "qwen-3-coder-32b")
    assert [s.name for s in config.sections] == ["server", "caching", "mcp", "security"]
    assert config.sections[1].data["semantic_threshold"] == 0.85


def test_bundled_defaults_are_self_contained() -> None:
    config = parse_config(DEFAULTS)

    assert config.warnings == ()
    model_names = {m.name for m in config.models}
    assert {m.provider for m in config.models} <= {p.name for p in config.providers}
    assert config.routing is not None and config.routing.fallback is not None
    for tier in config.routing.tiers:
        assert set(tier.model_names) <= model_names
    assert config.routing.fallback.model in model_names


def test_bad_yaml_syntax_reports_the_line() -> None:
    error = parse_error(
        """
        routing:
          tiers:
            - name: a
              model: [unclosed
        caching: {}
        """
    )

    assert len(error.issues) == 1
    assert error.issues[0].line == 5
    assert "invalid YAML" in str(error) and "line 5" in str(error)


def test_wrong_type_names_key_path_and_line() -> None:
    error = parse_error(
        """
        routing:
          tiers:
            - name: cheap
              model: deepseek-v3
            - name: pricey
              model: gpt-5.5
              max_cost_per_million: lots
        """
    )

    assert [str(issue) for issue in error.issues] == [
        "routing.tiers[1].max_cost_per_million at line 7: expected a number, got a string"
    ]


def test_every_error_is_reported_at_once() -> None:
    error = parse_error(
        """
        providers:
          - name: acme
            kind: grpc
            base_url: not-a-url
        models:
          - name: m1
            provider: acme
            input_cost_per_million: -1
            context_window: 0
        """
    )

    assert [(issue.path, issue.line) for issue in error.issues] == [
        ("providers[0].kind", 3),
        ("providers[0].base_url", 4),
        ("models[0].input_cost_per_million", 8),
        ("models[0].context_window", 9),
    ]
    assert "expected one of openai, anthropic, ollama" in str(error)


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        ("providers: [{name: 'a b', kind: openai, base_url: 'http://x/v1'}]", "providers[0].name", "letters, digits"),
        ("providers: [{name: a, kind: openai, base_url: 'http:/x/v1'}]", "providers[0].base_url", "http(s) URL"),
        ("providers: [{name: a, kind: openai}]", "providers[0].base_url", "missing required key"),
        ("providers: [{name: a, kind: openai, base_url: 'ftp://x'}]", "providers[0].base_url", "http(s) URL"),
        (
            "providers: [{name: a, kind: openai, base_url: 'http://x', read_timeout: 0}]",
            "providers[0].read_timeout",
            "at least 0.1",
        ),
        (
            "models: [{name: m, provider: p, output_cost_per_million: 0.0000001}]",
            "models[0].output_cost_per_million",
            "decimal places",
        ),
        ("models: [{name: m, provider: p, context_window: 1.5}]", "models[0].context_window", "whole number"),
        ("models: [{name: m, provider: p, enabled: 'yes'}]", "models[0].enabled", "true or false"),
        ("models: {name: m}", "models", "expected a list"),
        ("routing: {strategy: fastest}", "routing.strategy", "expected one of cost_optimized"),
        ("routing: {tiers: [{name: t, model: a, fallbacks: [b, a]}]}", "routing.tiers[0].fallbacks", "only once"),
        ("routing: {tiers: [{name: t, fallbacks: [b]}]}", "routing.tiers[0].model", "required when fallbacks"),
        (
            "routing: {tiers: [{name: t, model: a, capabilities: [x, 3]}]}",
            "routing.tiers[0].capabilities[1]",
            "non-empty string",
        ),
        ("routing: {fallback: {provider: ollama}}", "routing.fallback.model", "missing required key"),
        ("caching: {since: 2024-01-01}", "caching.since", "quote it as a string"),
        ("- just a list", "", "expected a mapping"),
    ],
)
def test_invalid_values_are_rejected(entry: str, path: str, message: str) -> None:
    error = parse_error(entry)

    assert [issue.path for issue in error.issues] == [path]
    assert message in error.issues[0].message


def test_api_key_env_must_be_a_variable_name_and_is_never_echoed() -> None:
    error = parse_error("providers: [{name: a, kind: openai, base_url: 'http://x/v1', api_key_env: sk-secret-123}]")

    assert "environment variable" in str(error)
    assert "sk-secret-123" not in str(error)


def test_duplicate_names_and_keys_are_errors() -> None:
    names = parse_error(
        """
        models:
          - {name: m, provider: p}
          - {name: m, provider: q}
        """
    )
    keys = parse_error(
        """
        routing:
          strategy: cost_optimized
          strategy: quality_first
        """
    )

    assert str(names.issues[0]) == "models[1].name at line 3: duplicate model name 'm' (first at line 2)"
    assert str(keys.issues[0]) == "routing.strategy at line 3: duplicate key (first at line 2)"


def test_unknown_keys_are_reported_not_dropped() -> None:
    config = parse_config(
        yaml_text(
            """
            providers:
              - name: acme
                kind: openai
                base_url: https://acme.example/v1
                zone: eu
            routing:
              tiers:
                - name: t
                  model: m
                  temperature: 0.2
              fallback: {provider: ollama, model: m, retries: 2}
            telemetry:
              enabled: true
            """
        )
    )

    assert [str(warning) for warning in config.warnings] == [  # in file order
        "providers[0].zone at line 5: unknown key — ignored",
        "routing.tiers[0].temperature at line 10: unknown key — ignored",
        "routing.fallback.retries at line 11: unknown key — ignored",
        "telemetry at line 12: unknown key — ignored",
    ]
    assert config.providers[0].name == "acme"


def test_empty_file_is_an_empty_config() -> None:
    config = parse_config("# nothing here\n")

    assert (config.providers, config.models, config.routing, config.sections) == ((), (), None, ())


# -- importing -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_template_imports_unchanged_on_an_empty_database() -> None:
    assert sum(row_counts().values()) == 0

    report = config_import(text=SEED_TEMPLATE, source="seed-000")

    assert {t.name: tier_models(t.name) for t in Tier.objects.all()} == {
        "simple_ops": ["deepseek-v3"],
        "code_gen": ["sonnet-4.5"],
        "complex_reasoning": ["gpt-5.5"],
    }
    simple_ops = Tier.objects.get(name="simple_ops")
    assert simple_ops.max_cost_per_million == Decimal("0.15")
    assert simple_ops.capabilities == ["file_ops", "grep", "basic_parsing"]
    # The models the template names come from the bundled defaults, with their providers.
    assert Model.objects.get(name="sonnet-4.5").provider.base_url == "https://api.anthropic.com"
    ollama = Provider.objects.get(name="ollama")
    assert (ollama.kind, ollama.base_url) == ("ollama", "http://127.0.0.1:11434")
    policy = RoutingPolicy.objects.get(tenant=None)
    assert policy.strategy == "cost_optimized"
    assert policy.fallback_enabled is True
    assert policy.fallback_model is not None
    assert (policy.fallback_model.name, policy.fallback_model.provider.name) == ("qwen-3-coder-32b", "ollama")
    sections = {s.name: s for s in ConfigSection.objects.all()}
    assert set(sections) == {"server", "caching", "mcp", "security"}
    assert sections["caching"].applied and not sections["server"].applied  # the response cache applies caching:
    assert sections["security"].data == {"require_confirmation_for": ["rm", "sudo", "chmod"], "sandbox": True}
    assert set(report.pending_sections) == {name for name, s in sections.items() if not s.applied}
    assert "caching" not in report.pending_sections
    assert sections["mcp"].applied and sections["security"].applied  # code mode and the guardrail apply them
    # The seed caps simple_ops at 0.15 while DeepSeek V3 costs 0.27: imported, and said so (skipped at route time).
    [warning] = report.warnings
    assert "deepseek-v3" in warning.message and "skipped when routing through 'simple_ops'" in warning.message
    assert warning.path == "routing.tiers[0].max_cost_per_million"
    created_notes = {c.name: c.note for c in report.changes if c.action == "created"}
    assert "from the bundled defaults" in created_notes["deepseek-v3"]
    assert "routing.fallback" in created_notes["ollama"]


@pytest.mark.django_db
def test_reimport_is_idempotent() -> None:
    config_import(text=SEED_TEMPLATE)
    counts, state = row_counts(), db_state()

    report = config_import(text=SEED_TEMPLATE)

    assert (row_counts(), db_state()) == (counts, state)
    assert report.total("created") == report.total("updated") == 0
    assert report.count("tier", "unchanged") == 3


@pytest.mark.django_db
def test_defaults_export_reimport_round_trip_is_stable() -> None:
    config_import(text=DEFAULTS)
    state = db_state()
    exported = config_export()

    report = config_import(text=exported)

    assert db_state() == state
    assert report.total("created") == report.total("updated") == 0
    assert config_export() == exported
    # The export alone rebuilds the same state in an empty database.
    RoutingPolicy.objects.all().delete()
    TierModel.objects.all().delete()
    Tier.objects.all().delete()
    Model.objects.all().delete()
    Provider.objects.all().delete()
    ConfigSection.objects.all().delete()
    config_import(text=exported)
    assert db_state() == state
    assert config_export() == exported


@pytest.mark.django_db
def test_export_uses_the_import_schema() -> None:
    config_import(text=DEFAULTS)

    config = parse_config(config_export())

    assert config.warnings == ()
    assert config.routing is not None and config.routing.fallback is not None
    # routing.fallback names the provider's upstream model id, as seed 000 does.
    assert (config.routing.fallback.provider, config.routing.fallback.model) == ("ollama", "qwen3-coder:32b")
    assert [s.name for s in config.sections] == ["server", "caching", "mcp", "security", "aliases"]
    assert config.model("deepseek-v3") == parse_config(DEFAULTS).model("deepseek-v3")


@pytest.mark.django_db
def test_wrong_type_changes_nothing() -> None:
    config_import(text=DEFAULTS)
    counts, state = row_counts(), db_state()
    broken = DEFAULTS.replace("max_cost_per_million: 3.0", "max_cost_per_million: three")

    with pytest.raises(ConfigError) as excinfo:
        config_import(text=broken, source="broken.yaml")

    assert "broken.yaml: routing.tiers[1].max_cost_per_million at line" in str(excinfo.value)
    assert (row_counts(), db_state()) == (counts, state)


@pytest.mark.django_db
def test_unknown_tier_model_errors_and_rolls_back() -> None:
    text = yaml_text(
        """
        providers:
          - {name: acme, kind: openai, base_url: 'https://acme.example/v1'}
        routing:
          strategy: quality_first
          tiers:
            - name: mystery
              model: no-such-model
        """
    )
    counts = row_counts()

    with pytest.raises(ConfigError) as excinfo:
        config_import(text=text)

    assert str(excinfo.value.issues[0]) == (
        "routing.tiers[0].model at line 7: unknown model 'no-such-model': define it under models"
    )
    assert row_counts() == counts  # the provider written before the error was rolled back
    assert not Provider.objects.filter(name="acme").exists()


@pytest.mark.django_db
def test_model_naming_an_unknown_provider_errors() -> None:
    with pytest.raises(ConfigError, match=r"models\[0\].provider at line 1: unknown provider 'nope'"):
        config_import(text="models: [{name: m, provider: nope}]\n")


@pytest.mark.django_db
def test_fallbacks_keep_their_order_and_reordering_updates() -> None:
    config_import(text=DEFAULTS)
    tier = "routing: {tiers: [{name: code_gen, model: sonnet-4.5, fallbacks: [%s]}]}\n"

    config_import(text=tier % "gpt-5.5, deepseek-v3")
    assert tier_models("code_gen") == ["sonnet-4.5", "gpt-5.5", "deepseek-v3"]
    assert Tier.objects.get(name="code_gen").capabilities == []  # an entry describes its whole row

    report = config_import(text=tier % "deepseek-v3, gpt-5.5")
    assert tier_models("code_gen") == ["sonnet-4.5", "deepseek-v3", "gpt-5.5"]
    assert [(c.action, c.note) for c in report.changes if c.kind == "tier"] == [("updated", "models")]
    assert "fallbacks:\n        - deepseek-v3\n        - gpt-5.5\n" in config_export()


@pytest.mark.django_db
def test_upsert_updates_what_differs_and_reports_it() -> None:
    config_import(text=DEFAULTS)

    report = config_import(text=DEFAULTS.replace("input_cost_per_million: 3.0", "input_cost_per_million: 2.5"))

    assert Model.objects.get(name="sonnet-4.5").input_cost_per_million == Decimal("2.5")
    updated = [(c.kind, c.name, c.note) for c in report.changes if c.action == "updated"]
    assert updated == [("model", "sonnet-4.5", "input_cost_per_million")]


@pytest.mark.django_db
def test_fallback_model_may_be_the_upstream_id_or_a_new_local_model() -> None:
    config_import(text=DEFAULTS)

    config_import(text="routing: {fallback: {provider: ollama, model: 'qwen3-coder:32b'}}\n")
    assert RoutingPolicy.objects.get(tenant=None).fallback_model == Model.objects.get(name="qwen-3-coder-32b")

    report = config_import(text="routing: {fallback: {provider: ollama, model: 'llama3.3:70b', enabled: false}}\n")
    local = Model.objects.get(name="llama3.3:70b")
    assert (local.provider.name, local.upstream_model, local.input_cost_per_million) == ("ollama", "llama3.3:70b", 0)
    policy = RoutingPolicy.objects.get(tenant=None)
    assert (policy.fallback_model, policy.fallback_enabled) == (local, False)
    assert any(c.name == "llama3.3:70b" and "local model" in c.note for c in report.changes)


@pytest.mark.django_db
def test_fallback_errors_name_the_key() -> None:
    config_import(text=DEFAULTS)

    with pytest.raises(ConfigError, match=r"routing.fallback.provider at line 1: unknown provider 'vllm'"):
        config_import(text="routing: {fallback: {provider: vllm, model: x}}\n")
    with pytest.raises(ConfigError, match=r"routing.fallback.model .*served by provider 'anthropic', not 'ollama'"):
        config_import(text="routing: {fallback: {provider: ollama, model: sonnet-4.5}}\n")


@pytest.mark.django_db
def test_sections_keep_their_applied_flag() -> None:
    config_import(text=SEED_TEMPLATE)
    ConfigSection.objects.filter(name="server").update(applied=True)

    report = config_import(text=SEED_TEMPLATE.replace("port: 3000", "port: 4000"))

    server = ConfigSection.objects.get(name="server")
    assert (server.data["port"], server.applied) == (4000, True)
    assert "server" not in report.pending_sections


# -- seeding ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_defaults_creates_missing_rows_and_keeps_admin_edits() -> None:
    first = config_seed_defaults()
    assert first.count("model", "created") == 4
    assert RoutingPolicy.objects.get(tenant=None).fallback_model is not None
    Model.objects.filter(name="sonnet-4.5").update(input_cost_per_million=Decimal("2.75"))
    Tier.objects.get(name="code_gen").tier_models.all().delete()
    counts = row_counts()

    again = config_seed_defaults()

    assert Model.objects.get(name="sonnet-4.5").input_cost_per_million == Decimal("2.75")
    assert tier_models("code_gen") == []  # an existing tier is left as the admin made it
    assert again.total("updated") == 0
    assert again.count("model", "kept") == 4
    assert row_counts() == counts


@pytest.mark.django_db
def test_seed_defaults_recreates_a_deleted_row() -> None:
    config_seed_defaults()
    Tier.objects.filter(name="simple_ops").delete()

    report = config_seed_defaults()

    assert tier_models("simple_ops") == ["deepseek-v3"]
    assert report.total("created") == 1


# -- management commands ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_config_command_prints_a_report(tmp_path: Path) -> None:
    path = tmp_path / "gateway-config.yaml"
    path.write_text(SEED_TEMPLATE + "telemetry: {enabled: true}\n", encoding="utf-8")
    out = io.StringIO()

    call_command("import_config", str(path), stdout=out)

    text = out.getvalue()
    assert "tiers: 3 created" in text
    assert "models: 4 created" in text
    pending = next(line for line in text.splitlines() if line.startswith("Stored, not yet applied: "))
    assert "server" in pending and "caching" not in pending
    assert "mcp" not in pending and "security" not in pending
    assert "telemetry at line 47: unknown key — ignored" in text


@pytest.mark.django_db
def test_import_config_command_reads_stdin() -> None:
    out = io.StringIO()

    call_command("import_config", "-", stdin=io.StringIO(SEED_TEMPLATE), stdout=out)

    assert "Imported <stdin>" in out.getvalue()
    assert Tier.objects.count() == 3


@pytest.mark.django_db
def test_import_config_command_fails_with_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("routing:\n  tiers:\n    - name: t\n      model: m\n      enabled: maybe\n", encoding="utf-8")

    with pytest.raises(CommandError, match=r"routing.tiers\[0\].enabled at line 5: expected true or false"):
        call_command("import_config", str(path), stdout=io.StringIO())
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_config", str(tmp_path / "missing.yaml"), stdout=io.StringIO())
    assert Tier.objects.count() == 0


@pytest.mark.django_db
def test_export_config_command_to_stdout_and_file(tmp_path: Path) -> None:
    config_import(text=DEFAULTS)
    out = io.StringIO()
    target = tmp_path / "export.yaml"

    call_command("export_config", stdout=out)
    call_command("export_config", "-o", str(target), stdout=io.StringIO())

    assert out.getvalue() == config_export()
    assert target.read_text(encoding="utf-8") == out.getvalue()


@pytest.mark.django_db
def test_seed_defaults_command_is_idempotent() -> None:
    first, second = io.StringIO(), io.StringIO()

    call_command("seed_defaults", stdout=first)
    call_command("seed_defaults", stdout=second)

    assert "providers: 4 created" in first.getvalue()
    assert "providers: 4 kept" in second.getvalue()
    assert "created" not in second.getvalue()


def test_cloud_provider_fields_and_extra_headers_round_trip() -> None:
    config = parse_config(
        yaml_text(
            """
            providers:
              - name: bedrock-eu
                kind: bedrock
                base_url: https://bedrock-runtime.eu-west-1.amazonaws.com
                region: eu-west-1
              - name: tunnel
                kind: ollama
                base_url: https://ollama.example.com
                extra_headers: {CF-Access-Client-Id: LOCAL_CF_ACCESS_CLIENT_ID}
            """
        )
    )
    bedrock, tunnel = config.providers
    assert bedrock.region == "eu-west-1" and bedrock.kind == "bedrock"
    assert tunnel.extra_headers == (("CF-Access-Client-Id", "LOCAL_CF_ACCESS_CLIENT_ID"),)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ("{CF-Access-Client-Secret: 'sk-live-123 456'}", "NAME of an environment variable"),
        ("{Authorization: MY_TOKEN}", "set by the adapter"),
        ("{'bad header': MY_TOKEN}", "not a valid HTTP header name"),
        ("[MY_TOKEN]", "must be an object"),
    ],
)
def test_extra_headers_take_variable_names_only(headers: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            yaml_text(
                f"""
                providers:
                  - name: tunnel
                    kind: ollama
                    base_url: https://ollama.example.com
                    extra_headers: {headers}
                """
            )
        )
    assert message in str(caught.value)
    assert "sk-live-123" not in str(caught.value)
