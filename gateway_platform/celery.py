"""The Celery application (worker and beat share it)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_platform.settings")

app = Celery("gateway_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
