"""Management API for the gateway's configuration (``/api/``): every object the admin edits.

- Global-only objects (providers, models) and ``POST /api/config``: superusers, as in the admin.
- Tenant-scoped objects (tiers with ordered members, skills, aliases, routing, guardrail and
  cache policies): superusers manage every row; a tenant admin reads the global rows and the
  rows of the tenants they administer and creates, changes and deletes only the latter (another
  tenant's row is a 404). These are the rules of ``tenants.admin_scoping``.

Writes run the model's own validation (``full_clean``: choices, validators, unique constraints),
are recorded in the object's admin history (``tenants.audit``) and bump the configuration
version through the models' save signals, so every gateway process sees them on its next request.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model as DbModel
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from caching.models import CachePolicy
from gateway_platform.drf import SlugRelatedField
from providers.models import Model, Provider
from routing.config_file import ConfigError, config_import
from routing.config_file.apply import ImportReport
from routing.models import GuardrailPolicy, ModelAlias, RoutingPolicy, Skill, Tier, TierModel
from routing.models.config import ConfigSection
from routing.models.tiers import MAX_WEIGHT, position_value
from tenants import permissions
from tenants.api import ScopedViewSet
from tenants.audit import audit_log, changed_fields_message
from tenants.models import Tenant

VIA = "API"


# --------------------------------------------------------------------------- serializers


class ValidatedModelSerializer(serializers.ModelSerializer):
    """Runs the model's ``full_clean`` so the API refuses exactly what the admin refuses (400, not 500)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, serializers.BooleanField):
                # A form post that leaves a checkbox out keeps the model's default (DRF would say False,
                # silently disabling a provider created with form data).
                field.default_empty_html = serializers.empty

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model = self.Meta.model
        concrete = {f.name: f for f in model._meta.concrete_fields}
        # A copy: the instance itself must keep its old values until save (the audit compares them).
        instance = copy.copy(self.instance) if self.instance is not None else model()
        for name, value in attrs.items():
            field = concrete.get(name)
            if field is not None:
                setattr(instance, field.attname, getattr(value, "pk", value) if field.is_relation else value)
        try:
            instance.full_clean(exclude=self.clean_exclude())
        except DjangoValidationError as exc:
            raise serializers.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            ) from None
        return attrs

    def clean_exclude(self) -> list[str]:
        return []


class TenantSlugField(SlugRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "slug")
        kwargs.setdefault("queryset", Tenant.objects.all())
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)


class ProviderSerializer(ValidatedModelSerializer):
    credential_set = serializers.BooleanField(source="has_credential", read_only=True)
    tenant = TenantSlugField(help_text="Empty: a platform provider (superusers). Set: that tenant's own provider.")
    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=4000,
        style={"input_type": "password"},
        help_text="A tenant's own credential: stored encrypted, never shown again. Empty clears it.",
    )

    class Meta:
        model = Provider
        validators: list[Any] = []  # uniqueness is checked by full_clean (DRF would make the fields required)
        fields = (
            "id",
            "name",
            "tenant",
            "kind",
            "base_url",
            "api_key_env",
            "api_key",
            "credential_set",
            "api_version",
            "region",
            "supports_responses",
            "extra_headers",
            "connect_timeout",
            "read_timeout",
            "total_timeout",
            "max_connections",
            "enabled",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def create(self, validated: dict[str, Any]) -> Provider:
        secret = validated.pop("api_key", None)
        provider = Provider(**validated)
        if secret is not None:
            provider.set_api_key(secret)
        provider.save()
        return provider

    def update(self, instance: Provider, validated: dict[str, Any]) -> Provider:
        secret = validated.pop("api_key", None)
        if secret is not None:
            instance.set_api_key(secret)
        return super().update(instance, validated)


class ProviderModelSerializer(ValidatedModelSerializer):
    provider = SlugRelatedField(slug_field="name", queryset=Provider.objects.all())

    class Meta:
        model = Model
        validators: list[Any] = []  # uniqueness is checked by full_clean (DRF would make the fields required)
        fields = "__all__"
        read_only_fields = ("created_at", "updated_at")


Position = list[tuple[str, int]]  # a tier position: (model name, weight) of each model sharing it


_POSITIONS_SCHEMA = {
    "type": "array",
    "items": {
        "oneOf": [
            {"type": "string", "description": "A model alone at this position."},
            {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "model": {"type": "string"},
                        "weight": {"type": "integer", "minimum": 1, "maximum": MAX_WEIGHT},
                    },
                    "required": ["model"],
                    "additionalProperties": False,
                },
            },
        ]
    },
}


@extend_schema_field(_POSITIONS_SCHEMA)
class TierPositionsField(serializers.Field):
    """A tier's models by position: each item a model name, or a list of ``{"model", "weight"}`` sharing it."""

    default_error_messages = {
        "not_a_list": "Expected a list of positions: a model name, or a list of {{model, weight}} sharing a position.",
    }

    def get_attribute(self, instance: Tier) -> list[Position]:
        return instance.positions()

    def to_representation(self, value: list[Position]) -> list[Any]:
        return [position_value(position) for position in value]

    def to_internal_value(self, data: object) -> list[Position]:
        if not isinstance(data, list):
            raise serializers.ValidationError(self.error_messages["not_a_list"].format())
        return [self._position(item, index) for index, item in enumerate(data)]

    @staticmethod
    def _position(item: object, index: int) -> Position:
        if isinstance(item, str):
            return [(_model_name(item, index), 1)]
        if not isinstance(item, list) or not item:
            raise serializers.ValidationError(
                f"Position {index}: expected a model name or a non-empty list of {{model, weight}}."
            )
        members: Position = []
        for entry in item:
            if not isinstance(entry, dict) or set(entry) - {"model", "weight"} or "model" not in entry:
                raise serializers.ValidationError(f"Position {index}: each entry is {{model, weight}}.")
            name, weight = _model_name(entry["model"], index), entry.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
                raise serializers.ValidationError(
                    f"Position {index}: the weight of '{name}' must be a whole number from 1 to {MAX_WEIGHT}."
                )
            members.append((name, weight))
        return members


def _model_name(value: object, index: int) -> str:
    """A position's model name, stripped; blank text, or text PostgreSQL cannot hold (NUL), is refused."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise serializers.ValidationError(f"Position {index}: expected a model name.")
    return value.strip()


class TierSerializer(ValidatedModelSerializer):
    tenant = TenantSlugField()
    models = TierPositionsField(
        help_text="The tier's models by position, primary first, then the fallbacks. A position is a model "
        'name, or a list of {"model": name, "weight": n} that share it (load balanced by `balancing`).',
    )

    class Meta:
        model = Tier
        validators: list[Any] = []  # uniqueness is checked by full_clean (DRF would make the fields required)
        exclude = ("members",)
        read_only_fields = ("created_at", "updated_at")

    def validate_models(self, positions: list[Position]) -> list[list[tuple[Model, int]]]:
        names = [name for position in positions for name, _ in position]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("A model appears twice.")
        found = {m.name: m for m in Model.objects.filter(name__in=names)}
        missing = [n for n in names if n not in found]
        if missing:
            raise serializers.ValidationError(f"Unknown models: {', '.join(missing)}.")
        return [[(found[name], weight) for name, weight in position] for position in positions]

    def create(self, validated: dict[str, Any]) -> Tier:
        members = validated.pop("models", [])
        tier = super().create(validated)
        self._set_members(tier, members)
        return tier

    def update(self, instance: Tier, validated: dict[str, Any]) -> Tier:
        members = validated.pop("models", None)
        tier = super().update(instance, validated)
        if members is not None:
            self._set_members(tier, members)
        return tier

    @staticmethod
    def _set_members(tier: Tier, positions: list[list[tuple[Model, int]]]) -> None:
        TierModel.objects.filter(tier=tier).delete()
        TierModel.objects.bulk_create(
            TierModel(tier=tier, model=model, position=index, weight=weight)
            for index, position in enumerate(positions)
            for model, weight in position
        )
        tier.save(update_fields=["updated_at"])  # one more save: the config version follows the new members


class SkillSerializer(ValidatedModelSerializer):
    tenant = TenantSlugField()

    class Meta:
        model = Skill
        validators: list[Any] = []  # uniqueness is checked by full_clean (DRF would make the fields required)
        fields = "__all__"


class AliasSerializer(ValidatedModelSerializer):
    tenant = TenantSlugField()

    class Meta:
        model = ModelAlias
        validators: list[Any] = []  # uniqueness is checked by full_clean (DRF would make the fields required)
        fields = "__all__"
        read_only_fields = ("created_at", "updated_at")


class RoutingPolicySerializer(ValidatedModelSerializer):
    tenant = TenantSlugField()
    fallback_model = SlugRelatedField(slug_field="name", queryset=Model.objects.all(), allow_null=True, required=False)

    class Meta:
        model = RoutingPolicy
        validators: list[Any] = []  # uniqueness is checked by full_clean (DRF would make the fields required)
        fields = "__all__"


class GuardrailPolicySerializer(ValidatedModelSerializer):
    tenant = TenantSlugField()

    class Meta:
        model = GuardrailPolicy
        validators: list[Any] = []  # uniqueness is checked by full_clean (DRF would make the fields required)
        fields = "__all__"


class CachePolicySerializer(ValidatedModelSerializer):
    tenant = TenantSlugField()

    class Meta:
        model = CachePolicy
        validators: list[Any] = []  # uniqueness is checked by full_clean (DRF would make the fields required)
        fields = "__all__"


# --------------------------------------------------------------------------- viewsets


class ConfigViewSet(ScopedViewSet):
    """Scoped CRUD with the model's validation; integrity races answer 400 instead of 500."""

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        with _integrity_as_400(), transaction.atomic():
            super().perform_create(serializer)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        instance = serializer.instance
        fields = serializer.fields  # type: ignore[attr-defined]
        names = list(serializer.validated_data)  # type: ignore[attr-defined]
        before = {name: fields[name].get_attribute(instance) for name in names if not fields[name].write_only}
        with _integrity_as_400(), transaction.atomic():
            obj = serializer.save()
            after = {name: fields[name].get_attribute(obj) for name in before}
            changes = {name: (old, after[name]) for name, old in before.items() if after[name] != old}
            message = changed_fields_message(changes)
            secrets = [name for name in names if fields[name].write_only]
            if secrets:  # never the value: only that it was replaced
                message += f" Replaced {', '.join(secrets)}."
            self.audit(obj, "change", message)

    def perform_destroy(self, instance: Any) -> None:
        with _integrity_as_400(), transaction.atomic():
            super().perform_destroy(instance)


@contextlib.contextmanager
def _integrity_as_400() -> Iterator[None]:
    try:
        yield
    except IntegrityError:
        raise serializers.ValidationError(
            {"non_field_errors": ["Conflicts with an existing row or is still in use."]}
        ) from None


class TenantConfigViewSet(ConfigViewSet):
    """Global rows (no tenant) plus the rows of the tenants the user administers."""

    scoped_choices = {"tenant": "administered"}

    def administered(self, user: Any) -> QuerySet[Tenant]:
        return permissions.administered_tenants(user)

    def visible(self, user: Any) -> QuerySet:
        model = self.get_serializer_class().Meta.model  # type: ignore[attr-defined]
        rows = model.objects.all()
        if not user.is_superuser:
            rows = rows.filter(Q(tenant__isnull=True) | Q(tenant__in=self.administered(user)))
        return rows.order_by("pk")

    def may_create(self, user: Any) -> bool:
        if user.is_superuser:
            return True
        # A tenant admin creates rows for one of their tenants only (never a global row).
        tenant = self.request.data.get("tenant") if hasattr(self.request.data, "get") else None
        return bool(tenant) and self.administered(user).filter(slug=tenant).exists()

    def may_change(self, user: Any, obj: Any) -> bool:
        if user.is_superuser:
            return True
        if obj.tenant_id is None or not self.administered(user).filter(pk=obj.tenant_id).exists():
            return False
        tenant = self.request.data.get("tenant", "") if hasattr(self.request.data, "get") else ""
        return tenant == "" or self.administered(user).filter(slug=tenant).exists()


class ProviderViewSet(TenantConfigViewSet):
    """Upstream providers: platform ones (superusers; credentials by environment variable name) and
    tenants' own (their tenant admins too; the key sent once, stored encrypted, never shown).

    Unlike tiers, a tenant admin does not see the platform's providers (as in the admin).
    """

    serializer_class = ProviderSerializer
    search_fields = ("name", "base_url")
    filterset_fields = ("kind", "enabled")

    def visible(self, user: Any) -> QuerySet:
        if user.is_superuser:
            return Provider.objects.all().order_by("pk")
        return Provider.objects.filter(tenant__in=self.administered(user)).order_by("pk")


class ModelViewSet(ConfigViewSet):
    """Models clients can name, with prices: on platform providers (superusers) or a tenant's own."""

    serializer_class = ProviderModelSerializer
    search_fields = ("name", "upstream_model")
    filterset_fields = ("enabled",)
    scoped_choices = {"provider": "providers"}

    def providers(self, user: Any) -> QuerySet[Provider]:
        if user.is_superuser:
            return Provider.objects.all()
        return Provider.objects.filter(tenant__in=permissions.administered_tenants(user))

    def visible(self, user: Any) -> QuerySet:
        return Model.objects.filter(provider__in=self.providers(user)).order_by("pk")

    def may_create(self, user: Any) -> bool:
        name = self.request.data.get("provider") if hasattr(self.request.data, "get") else None
        return bool(user.is_superuser) or (bool(name) and self.providers(user).filter(name=name).exists())

    def may_change(self, user: Any, obj: Any) -> bool:
        return bool(user.is_superuser) or self.providers(user).filter(pk=obj.provider_id).exists()


class TierViewSet(TenantConfigViewSet):
    """Tiers and their models by position (``models``: primary first; a shared position is a weighted list)."""

    serializer_class = TierSerializer
    search_fields = ("name",)

    def get_queryset(self) -> QuerySet[Tier]:
        return super().get_queryset().prefetch_related("tier_models__model")


class SkillViewSet(TenantConfigViewSet):
    serializer_class = SkillSerializer
    search_fields = ("slug", "name")


class AliasViewSet(TenantConfigViewSet):
    serializer_class = AliasSerializer
    search_fields = ("pattern", "target")


class RoutingPolicyViewSet(TenantConfigViewSet):
    serializer_class = RoutingPolicySerializer


class GuardrailPolicyViewSet(TenantConfigViewSet):
    serializer_class = GuardrailPolicySerializer


class CachePolicyViewSet(TenantConfigViewSet):
    serializer_class = CachePolicySerializer


# --------------------------------------------------------------------------- POST /api/config


class ConfigImportSerializer(serializers.Serializer):
    config = serializers.CharField(help_text="The configuration in the config-file format (YAML or JSON).")
    dry_run = serializers.BooleanField(default=True, help_text="Report what would change and change nothing.")


class ChangeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    action = serializers.CharField()
    note = serializers.CharField()


class ConfigReportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    changes = ChangeSerializer(many=True)
    pending_sections = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    summary = serializers.ListField(child=serializers.CharField())


class ConfigIssuesSerializer(serializers.Serializer):
    detail = serializers.CharField()
    issues = serializers.ListField(child=serializers.CharField())


class _DryRun(Exception):
    def __init__(self, report: ImportReport) -> None:
        self.report = report


def _audit_import(user: Any, report: ImportReport) -> None:
    lookups: dict[str, Any] = {
        "provider": lambda name: Provider.objects.filter(name=name).first(),
        "model": lambda name: Model.objects.filter(name=name).first(),
        "tier": lambda name: Tier.objects.filter(tenant=None, name=name).first(),
        "routing policy": lambda name: RoutingPolicy.objects.filter(tenant=None).first(),
        "section": lambda name: ConfigSection.objects.filter(name=name).first(),
    }
    for change in report.changes:
        if change.action not in ("created", "updated") or change.kind not in lookups:
            continue
        obj: DbModel | None = lookups[change.kind](change.name)
        if obj is not None:
            verb = "add" if change.action == "created" else "change"
            audit_log(user, obj, verb, f"Config import: {change.note or change.action}.", via=VIA)


class ConfigImportViewSet(viewsets.ViewSet):
    """``POST /api/config/``: apply a whole configuration (upsert by name), or preview it with ``dry_run``."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=ConfigImportSerializer,
        responses={200: ConfigReportSerializer, 400: ConfigIssuesSerializer, 403: ConfigIssuesSerializer},
    )
    def create(self, request: Request) -> Response:
        if not request.user.is_superuser:
            return Response({"detail": "Only platform administrators change the configuration.", "issues": []}, 403)
        form = ConfigImportSerializer(data=request.data)
        if not form.is_valid():
            issues = [f"{name}: {message}" for name, messages in form.errors.items() for message in messages]
            return Response({"detail": "Invalid request; nothing changed.", "issues": issues}, 400)
        dry_run = form.validated_data["dry_run"]
        try:
            with transaction.atomic():
                report = config_import(text=form.validated_data["config"], source="API")
                if dry_run:
                    raise _DryRun(report)  # roll back: nothing changes, no version bump is sent
                _audit_import(request.user, report)
        except _DryRun as preview:
            report = preview.report
        except ConfigError as exc:
            issues = [str(issue) for issue in exc.issues] or [str(exc)]
            return Response({"detail": "The configuration is invalid; nothing changed.", "issues": issues}, 400)
        body = {
            "dry_run": dry_run,
            "changes": [{"kind": c.kind, "name": c.name, "action": c.action, "note": c.note} for c in report.changes],
            "pending_sections": list(report.pending_sections),
            "warnings": [str(w) for w in report.warnings],
            "summary": report.summary_lines(),
        }
        return Response(body, status=status.HTTP_200_OK)


ROUTES = [
    ("providers", ProviderViewSet, "provider"),
    ("models", ModelViewSet, "model"),
    ("tiers", TierViewSet, "tier"),
    ("skills", SkillViewSet, "skill"),
    ("aliases", AliasViewSet, "alias"),
    ("routing-policies", RoutingPolicyViewSet, "routing-policy"),
    ("guardrail-policies", GuardrailPolicyViewSet, "guardrail-policy"),
    ("cache-policies", CachePolicyViewSet, "cache-policy"),
    ("config", ConfigImportViewSet, "config"),
]
