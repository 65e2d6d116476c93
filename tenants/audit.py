"""One audit trail for every surface: admin, portal and API writes all become admin ``LogEntry`` rows.

The Django admin records its own changes; the portal and the API call
:func:`audit_log` after a successful write, so an object's admin history page
("History" button) shows who changed what and when, whichever surface they used.
Messages never contain secrets: say "created a key", never the key.
"""

from __future__ import annotations

import logging
from typing import Literal

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model

logger = logging.getLogger(__name__)

Action = Literal["add", "change", "delete"]
_FLAGS: dict[str, int] = {"add": ADDITION, "change": CHANGE, "delete": DELETION}


def audit_log(
    user: AbstractBaseUser | AnonymousUser | None,
    obj: Model,
    action: Action,
    message: str,
    *,
    via: str = "",
) -> LogEntry | None:
    """Record that ``user`` did ``action`` to ``obj``; ``via`` ("API", "portal") prefixes the message.

    Call it after the write succeeded (inside the same transaction is fine).
    Writes without a signed-in user (management commands, tasks) are only
    logged, since a ``LogEntry`` needs a user.
    """
    text = f"[{via}] {message}" if via else message
    if user is None or not user.is_authenticated:
        logger.info(
            "audit: %s %s %s",
            action,
            obj._meta.label,
            obj.pk,
            extra={"audit_action": action, "object": obj._meta.label, "object_id": obj.pk, "audit_message": text},
        )
        return None
    entries = LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[obj], action_flag=_FLAGS[action], change_message=text, single_object=True
    )
    return entries if isinstance(entries, LogEntry) else None


def changed_fields_message(changes: dict[str, tuple[object, object]]) -> str:
    """A readable "Changed name: 'a' → 'b'; rpm_limit: None → 60." from old/new pairs."""
    if not changes:
        return "No fields changed."
    parts = [f"{name}: {old!r} → {new!r}" for name, (old, new) in changes.items()]
    return "Changed " + "; ".join(parts) + "."
