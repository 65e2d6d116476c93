from django.db import migrations, models


class Migration(migrations.Migration):
    """One cascade outcome per request: the usage drain may deliver a record twice."""

    dependencies = [
        ("routing", "0003_issue4_schema"),
    ]

    operations = [
        migrations.AlterField(
            model_name="routingoutcome",
            name="request_id",
            field=models.CharField(max_length=64, unique=True),
        ),
    ]
