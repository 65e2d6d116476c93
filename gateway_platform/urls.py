"""URLs served by Django (everything but /v1/, which asgi.py sends to Channels)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from gateway_platform import health, home, metrics_view

urlpatterns = [
    path("", home.home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("reports/", include("billing.reports.urls")),
    path("portal/", include("tenants.portal.urls")),
    path("health", health.readiness, name="health"),
    path("live", health.liveness, name="live"),
    path("api/", include("gateway_platform.api_urls")),  # management API, /api/schema/, /api/docs/
    path("metrics", metrics_view.metrics, name="metrics"),
]
