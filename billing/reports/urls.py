"""URLs of the usage and billing reports (`/reports/`)."""

from __future__ import annotations

from django.urls import path, re_path

from billing.reports import views

app_name = "reports"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("top-keys/", views.top_keys, name="top-keys"),
    path("budgets/", views.budgets, name="budgets"),
    path("csv/<slug:table>/", views.export_csv, name="csv"),
    path("statement/", views.statement_index, name="statement-index"),
    re_path(r"^statement/(?P<tenant>[-a-zA-Z0-9_]+)/(?P<month>\d{4}-\d{2})/$", views.statement, name="statement"),
    re_path(
        r"^statement/(?P<tenant>[-a-zA-Z0-9_]+)/(?P<month>\d{4}-\d{2})/csv/$", views.statement_csv, name="statement-csv"
    ),
    path("<slug:segment>/", views.breakdown, name="breakdown"),
]
