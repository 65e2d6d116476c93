"""The management API under ``/api/``: one router over every app's viewsets, the schema and its docs.

Apps list their viewsets in ``<app>/api.py`` as ``ROUTES = [(prefix, viewset, basename), ...]``
(or expose a DRF ``router``); this module is the only place they are mounted.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

API_MODULES = ("tenants.api", "billing.api", "routing.api")

router = DefaultRouter()
for module_name in API_MODULES:
    if find_spec(module_name) is None:  # an app whose API is not written yet
        continue
    module = import_module(module_name)
    for prefix, viewset, basename in getattr(module, "ROUTES", []):
        router.register(prefix, viewset, basename=basename)
    if hasattr(module, "router"):
        router.registry.extend(module.router.registry)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include(router.urls)),
]
