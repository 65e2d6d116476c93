"""``ensure_admin``: make sure a superuser exists (used by ``make run``)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the first superuser from GATEWAY_ADMIN_USER / GATEWAY_ADMIN_PASSWORD, "
        "or with a generated password that is printed once. Does nothing if a superuser exists."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("GATEWAY_ADMIN_USER", "admin")
        password = os.environ.get("GATEWAY_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created superuser '{username}' with password: {password}\n"
                    "This password is shown only once. Set GATEWAY_ADMIN_PASSWORD to choose your own."
                )
            )
        else:
            self.stdout.write(f"Created superuser '{username}' from GATEWAY_ADMIN_USER / GATEWAY_ADMIN_PASSWORD.")
