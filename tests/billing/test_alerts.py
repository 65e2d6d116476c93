"""Budget alerts: once per threshold per period, by email and by a signed webhook."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from django.core import mail

from billing import alerts
from billing.budgets import budget_key
from billing.models import AlertChannel, BudgetAlert
from billing.periods import period_containing
from gateway_platform.celery import app as celery_app
from gateway_platform.redis_clients import sync_client
from tests.factories import make_budget, make_key

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[bytes, dict[str, str]]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((body, dict(self.headers)))
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_url(settings) -> Iterator[str]:
    # The receiver is on loopback, which the outbound URL policy refuses unless allowed.
    settings.GATEWAY = {**settings.GATEWAY, "OUTBOUND_ALLOWED_NETWORKS": [ipaddress.ip_network("127.0.0.0/8")]}
    Receiver.received, Receiver.status = [], 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


@pytest.fixture(autouse=True)
def eager_celery(settings) -> Iterator[None]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def spend(budget, usd: str) -> None:
    period = period_containing(budget.period, "UTC", NOW)
    sync_client().hset(budget_key(budget.pk, period), "s", int(Decimal(usd) * 10**9))


def test_each_threshold_alerts_once_per_period_on_every_channel(webhook_url):
    key, _ = make_key()
    tenant = key.team.tenant
    budget = make_budget("10", api_key=key)  # thresholds 50/80/100 by default
    AlertChannel.objects.create(tenant=tenant, kind="email", target="finance@example.com")
    hook = AlertChannel.objects.create(tenant=tenant, kind="webhook", target=webhook_url)

    spend(budget, "8.5")
    assert sorted(a.threshold for a in alerts.budget_alerts_check(now=NOW)) == [50, 80]
    assert alerts.budget_alerts_check(now=NOW) == []  # checked again: nothing new
    spend(budget, "10")
    assert [a.threshold for a in alerts.budget_alerts_check(now=NOW)] == [100]
    assert BudgetAlert.objects.count() == 3

    assert len(mail.outbox) == 3
    assert sorted(m.subject.split(" reached ")[1][:3] for m in mail.outbox) == ["100", "50%", "80%"]
    assert mail.outbox[0].to == ["finance@example.com"]
    assert len(Receiver.received) == 3
    body, headers = Receiver.received[-1]
    assert alerts.signature_valid(hook.secret, body, headers["X-Gateway-Signature"])
    assert not alerts.signature_valid("another secret", body, headers["X-Gateway-Signature"])
    payload = orjson.loads(body)
    assert payload["type"] == "budget.threshold_crossed" and payload["threshold_percent"] == 100
    assert payload["tenant"] == tenant.slug and payload["budget"]["scope"] == f"API key '{key.name}'"
    assert payload["spent_usd"] == "10.0000000000"


def test_a_new_period_alerts_again(webhook_url):
    key, _ = make_key()
    budget = make_budget("10", api_key=key, period="daily", thresholds=[90])
    spend(budget, "9.5")
    assert len(alerts.budget_alerts_check(now=NOW)) == 1
    tomorrow = NOW.replace(day=22)
    sync_client().hset(budget_key(budget.pk, period_containing("daily", "UTC", tomorrow)), "s", 9_500_000_000)
    assert len(alerts.budget_alerts_check(now=tomorrow)) == 1


def test_two_checkers_at_once_record_one_alert():
    key, _ = make_key()
    budget = make_budget("1", team=key.team, thresholds=[50])
    spend(budget, "0.6")
    results: list[int] = []

    def check() -> None:
        from django.db import connections

        try:
            results.append(len(alerts.budget_alerts_check(now=NOW)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 1 and BudgetAlert.objects.count() == 1


def test_a_failing_webhook_raises_to_be_retried(webhook_url):
    key, _ = make_key()
    budget = make_budget("1", tenant=key.team.tenant, thresholds=[50])
    channel = AlertChannel.objects.create(tenant=key.team.tenant, kind="webhook", target=webhook_url)
    alert = BudgetAlert.objects.create(
        budget=budget, period_start=NOW, threshold=50, spent_usd=Decimal("0.5"), amount_usd=Decimal(1)
    )
    Receiver.status = 503
    with pytest.raises(alerts.DeliveryError):
        alerts.alert_deliver(alert=alert, channel=channel)
    channel.target = "http://127.0.0.1:9/unreachable"
    with pytest.raises(alerts.DeliveryError):
        alerts.alert_deliver(alert=alert, channel=channel)


def test_an_alert_queued_while_the_broker_is_down_is_delivered_later(webhook_url, monkeypatch):
    from kombu.exceptions import OperationalError

    from billing import tasks
    from billing.models import AlertDelivery

    key, _ = make_key()
    budget = make_budget("1", tenant=key.team.tenant, thresholds=[50])
    AlertChannel.objects.create(tenant=key.team.tenant, kind="webhook", target=webhook_url)

    def broker_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.deliver_budget_alert, "delay", broker_down)
    spend(budget, "0.6")
    [alert] = alerts.budget_alerts_check(now=NOW)
    [delivery] = AlertDelivery.objects.filter(alert=alert)
    assert delivery.state == AlertDelivery.State.PENDING and Receiver.received == []
    assert alerts.budget_alerts_check(now=NOW) == []  # "already seen": only the outbox can deliver it now

    monkeypatch.undo()
    tasks.retry_budget_alerts()  # the beat task
    delivery.refresh_from_db()
    assert delivery.state == AlertDelivery.State.DELIVERED and len(Receiver.received) == 1


def test_a_failing_webhook_backs_off_and_is_given_up(webhook_url):
    from datetime import timedelta

    from billing.models import AlertDelivery

    key, _ = make_key()
    budget = make_budget("1", tenant=key.team.tenant, thresholds=[50])
    AlertChannel.objects.create(tenant=key.team.tenant, kind="webhook", target=webhook_url)
    Receiver.status = 503
    spend(budget, "0.6")
    [alert] = alerts.budget_alerts_check(now=NOW)  # the fast path tries once and fails
    delivery = AlertDelivery.objects.get(alert=alert)
    assert (delivery.state, delivery.attempts) == (AlertDelivery.State.PENDING, 1) and "503" in delivery.last_error
    assert alerts.alert_deliveries_retry(now=timezone_now()) == 0  # not due yet: backoff
    assert AlertDelivery.objects.get(pk=delivery.pk).attempts == 1
    later = timezone_now()
    for _ in range(AlertDelivery.MAX_ATTEMPTS):
        later += timedelta(hours=2)
        alerts.alert_deliveries_retry(now=later)
    delivery.refresh_from_db()
    assert delivery.state == AlertDelivery.State.GIVEN_UP and delivery.attempts == AlertDelivery.MAX_ATTEMPTS


def timezone_now() -> datetime:
    from django.utils import timezone

    return timezone.now()
