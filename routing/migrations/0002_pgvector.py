from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector for the semantic cache's embeddings (the one engine: PostgreSQL)."""

    dependencies = [("routing", "0001_initial")]

    operations = [VectorExtension()]
