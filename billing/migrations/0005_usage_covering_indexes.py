"""Covering indexes for budget seeding, built without locking the usage table."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("billing", "0004_budgets_limits_alerts"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="usageevent",
            index=models.Index(fields=["tenant", "started_at"], include=("cost_usd",), name="usage_tenant_time_cost"),
        ),
        AddIndexConcurrently(
            model_name="usageevent",
            index=models.Index(fields=["team", "started_at"], include=("cost_usd",), name="usage_team_time_cost"),
        ),
        AddIndexConcurrently(
            model_name="usageevent",
            index=models.Index(
                fields=["api_key", "started_at"], include=("cost_usd", "model"), name="usage_key_time_cost"
            ),
        ),
        RemoveIndexConcurrently(model_name="usageevent", name="usage_tenant_time"),
        RemoveIndexConcurrently(model_name="usageevent", name="usage_key_time"),
    ]
