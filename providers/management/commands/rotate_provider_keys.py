"""``manage.py rotate_provider_keys``: re-encrypt every stored provider credential with the first key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from providers.models import Provider
from providers.secrets import CredentialUnreadable, rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt tenants' provider credentials with the first key of GATEWAY_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones after it, run this, then remove the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rotated, unreadable = 0, []
        with transaction.atomic():
            for provider in Provider.objects.select_for_update().exclude(api_key_encrypted=""):
                try:
                    provider.api_key_encrypted = rotate(provider.api_key_encrypted)
                except CredentialUnreadable:
                    unreadable.append(provider.name)
                    continue
                provider.save(update_fields=["api_key_encrypted", "updated_at"])
                rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} provider credential(s).")
        if unreadable:
            raise CommandError(f"No configured key decrypts the credential of: {', '.join(unreadable)}.")
