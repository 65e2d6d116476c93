"""Query filters of the management API.

Relations are filtered by plain ids (``NumberFilter``), never by model choices:
a choice filter would answer "not a valid choice" for an id that does not exist
and an empty page for another tenant's, telling the two apart.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from django_filters import rest_framework as filters

from tenants.models import ApiKey, Membership, Team, Tenant
from tenants.serializers import KEY_STATUSES


class TenantFilter(filters.FilterSet):
    class Meta:
        model = Tenant
        fields = ("status", "slug")


class TeamFilter(filters.FilterSet):
    tenant = filters.NumberFilter(field_name="tenant_id", help_text="Tenant id.")

    class Meta:
        model = Team
        fields = ("tenant", "slug")


class MembershipFilter(filters.FilterSet):
    team = filters.NumberFilter(field_name="team_id", help_text="Team id.")
    tenant = filters.NumberFilter(field_name="team__tenant_id", help_text="Tenant id.")
    user = filters.CharFilter(field_name="user__username", help_text="Username.")

    class Meta:
        model = Membership
        fields = ("team", "tenant", "user", "role")


class ApiKeyFilter(filters.FilterSet):
    team = filters.NumberFilter(field_name="team_id", help_text="Team id.")
    tenant = filters.NumberFilter(field_name="team__tenant_id", help_text="Tenant id.")
    created_by = filters.CharFilter(field_name="created_by__username", help_text="Username of the key's owner.")
    status = filters.ChoiceFilter(choices=KEY_STATUSES, method="filter_status")

    class Meta:
        model = ApiKey
        fields = ("team", "tenant", "created_by", "status")

    def filter_status(self, queryset: QuerySet[ApiKey], name: str, value: str) -> QuerySet[ApiKey]:
        now = timezone.now()
        if value == "active":
            return queryset.usable()  # type: ignore[attr-defined]
        if value == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset.filter(revoked_at__isnull=False)
