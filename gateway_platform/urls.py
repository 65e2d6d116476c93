"""URLs served by Django (everything but /v1/, which asgi.py sends to Channels)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gateway_platform import health, metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health.readiness, name="health"),
    path("live", health.liveness, name="live"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("metrics", metrics_view.metrics, name="metrics"),
]
