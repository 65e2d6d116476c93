"""The shipped Grafana dashboard and Prometheus alert rules name only metrics and labels that exist.

Always: a parser check of every PromQL expression against the metrics this code registers.
Where ``promtool`` is installed (Debian's ``prometheus`` package; ``make test`` installs it when it
can): ``promtool check rules`` and the rule unit tests in ``deploy/prometheus/alerts.test.yml``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import time

import prometheus_client
import pytest
import yaml
from django.test import Client

import gateway_platform.asgi  # noqa: F401  (loads every module that registers metrics)
from billing import deadletter, usage
from billing.budgets import budget_key
from billing.periods import period_containing
from gateway_platform import scrape_metrics
from gateway_platform.redis_clients import sync_client
from tests.deploy.deploy_files import BASE_DIR
from tests.factories import make_budget, make_key

RULES = BASE_DIR / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = BASE_DIR / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = BASE_DIR / "deploy" / "grafana" / "gateway-dashboard.json"
REQUIRED_ALERTS = {
    "GatewayHighErrorRate",
    "GatewayUpstreamHopLatencyHigh",
    "GatewayCircuitOpen",
    "GatewayTenantTokenRateSpike",
    "GatewayBudgetBurnProjected",
    "GatewayUsageDrainLag",
    "GatewayUsageDeadLetters",
}
METRIC_RE = re.compile(r"\b((?:gateway|django|process|python)_[a-z0-9_]+)\b")
BY_RE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHER_RE = re.compile(r"\{([^}]*)\}")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
    "summary": ("_count", "_sum"),
}


def exposed_metrics() -> dict[str, set[str]]:
    """Sample names this code exposes on /metrics, each with its label names."""
    exposed: dict[str, set[str]] = {}
    # The registry keeps, per collector, every sample name it exposes (name_total, name_bucket, ...).
    for collector, names in list(prometheus_client.REGISTRY._collector_to_names.items()):
        labels = set(getattr(collector, "_labelnames", ()))
        for name in names:
            exposed[name] = labels | ({"le"} if name.endswith("_bucket") else set())
    for name, labels in scrape_metrics.LABELS.items():
        exposed[name] = set(labels)
    return exposed


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every alert rule and dashboard target."""
    found = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            found.append((rule["alert"], rule["expr"]))
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


def test_every_expression_names_existing_metrics_and_labels():
    exposed = exposed_metrics()
    for where, expr in expressions():
        unquoted = re.sub(r'"[^"]*"', '""', expr)
        names = set(METRIC_RE.findall(unquoted))
        assert names, f"{where}: no gateway metric in {expr!r}"
        missing = names - set(exposed)
        assert not missing, f"{where}: metrics that /metrics does not expose: {missing}"
        labels = set().union(*(exposed[name] for name in names)) | {"instance", "job"}
        used = {label.strip() for group in BY_RE.findall(unquoted) for label in group.split(",") if label.strip()}
        for matchers in MATCHER_RE.findall(unquoted):
            used |= {m.split("=")[0].split("!")[0].strip() for m in matchers.split(",") if m.strip()}
        assert used <= labels, f"{where}: labels {used - labels} are not labels of {names}"


def test_the_rules_cover_every_required_alert_with_severity_and_summary():
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_dashboard_is_importable_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    inputs = {item["name"] for item in dashboard["__inputs"]}
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"].strip("${}") in inputs


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian package prometheus)")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        ["promtool", "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.mark.django_db
def test_metrics_report_drain_lag_dead_letters_and_budget_burn(settings):
    # Scraped from loopback: allowed only where configured (outside local mode the token is the default).
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    settings.GATEWAY = {**settings.GATEWAY, "METRICS_ALLOWED_NETWORKS": loopback}
    client = sync_client()
    client.delete(usage.STREAM, deadletter.DEAD_STREAM)
    oldest_ms = int(time.time() * 1000) - 90_000
    client.xadd(usage.STREAM, {"e": b"{}"}, id=f"{oldest_ms}-0")
    client.xadd(usage.STREAM, {"e": b"{}"})
    client.xadd(deadletter.DEAD_STREAM, {"e": b"{}", "error": "refused", "source": "1-0", "at": "0"})
    key, _ = make_key()
    budget = make_budget("10", api_key=key)
    period = period_containing(budget.period, key.team.tenant.timezone, budget.created_at)
    client.hset(budget_key(budget.id, period), mapping={"s": 7_000_000_000, "r": 500_000_000})  # 7 + 0.5 USD
    try:
        text = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    finally:
        client.delete(usage.STREAM, deadletter.DEAD_STREAM, budget_key(budget.id, period))
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gateway_") and not line.startswith("#")
    }
    assert values["gateway_usage_stream_length"] == 2
    assert 90 <= values["gateway_usage_drain_lag_seconds"] < 3600
    assert values["gateway_usage_dead_letters"] == 1
    assert values["gateway_usage_spool_records"] == 0
    (ratio,) = [
        v for k, v in values.items() if k.startswith(f'gateway_budget_used_ratio{{action="block",budget="{budget.id}"')
    ]
    assert ratio == pytest.approx(0.75)
    assert not any(k.startswith("gateway_scrape_errors{") for k in values)
