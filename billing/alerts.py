"""Budget alerts: a soft threshold crossed sends one email and one signed webhook per channel.

``budget_alerts_check`` (Celery beat) compares each budget period's settled
spend in Redis with its thresholds. A crossed threshold becomes a
``BudgetAlert`` row; its unique constraint (budget, period, threshold) makes
the alert exactly-once however many workers check at the same time. The same
transaction writes one ``AlertDelivery`` (outbox) row per enabled channel; after
commit each is handed to its own Celery task (the fast path), and the
``retry_budget_alerts`` beat task sends whatever is still pending and due, with
backoff, until delivered or given up: a broker that is down when the alert is
queued delays it, never loses it, and a failing webhook never re-sends an email.

Webhooks are JSON, signed with the channel's secret:
``X-Gateway-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from billing.budgets import BudgetClaim, nano_to_usd
from billing.limits import BudgetInfo, load_limits
from billing.models import AlertChannel, AlertDelivery, BudgetAlert
from billing.periods import period_containing
from gateway_platform import outbound
from gateway_platform.redis_clients import sync_client

logger = logging.getLogger(__name__)

EVENT = "budget.threshold_crossed"
SIGNATURE_HEADER = "X-Gateway-Signature"


class DeliveryError(Exception):
    """A delivery failed in a way worth retrying."""


def signature(secret: str, body: bytes) -> str:
    """The ``X-Gateway-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(signature(secret, body), header)


def _crossed(budget: BudgetInfo, settled_nano: int) -> list[int]:
    spent = nano_to_usd(settled_nano)
    return [t for t in budget.thresholds if spent * 100 >= budget.amount_usd * t]


def budget_alerts_check(*, now: datetime) -> list[BudgetAlert]:
    """Record every threshold crossed in the current periods and enqueue its deliveries (once each)."""
    limits = load_limits()
    budgets = [b for b in limits.all_budgets() if b.thresholds]
    claims = [BudgetClaim(b, period_containing(b.period, b.timezone, now), 0) for b in budgets]
    pipe = sync_client().pipeline(transaction=False)
    for claim in claims:
        pipe.hget(claim.key, "s")
    settled = pipe.execute() if claims else []
    due = [(claim, int(value)) for claim, value in zip(claims, settled, strict=True) if value is not None]
    if not due:
        return []
    seen = set(
        BudgetAlert.objects.filter(budget_id__in=[c.budget.id for c, _ in due]).values_list(
            "budget_id", "period_start", "threshold"
        )
    )
    created = []
    for claim, nano in due:
        for threshold in _crossed(claim.budget, nano):
            if (claim.budget.id, claim.period.start, threshold) in seen:
                continue
            alert = _record(claim, threshold, nano_to_usd(nano))
            if alert is not None:
                created.append(alert)
    return created


def _record(claim: BudgetClaim, threshold: int, spent: Decimal) -> BudgetAlert | None:
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(
                budget_id=claim.budget.id,
                period_start=claim.period.start,
                threshold=threshold,
                spent_usd=spent,
                amount_usd=claim.budget.amount_usd,
            )
            channels = AlertChannel.objects.filter(tenant=alert.budget.owner_tenant(), enabled=True)
            AlertDelivery.objects.bulk_create([AlertDelivery(alert=alert, channel=c) for c in channels])
            transaction.on_commit(lambda: alert_deliveries_enqueue(alert=alert))
    except IntegrityError:
        return None  # another worker recorded it first, and delivers it
    logger.info(
        "budget threshold crossed",
        extra={"budget_id": claim.budget.id, "threshold": threshold, "spent_usd": str(spent)},
    )
    return alert


def alert_deliveries_enqueue(*, alert: BudgetAlert) -> int:
    """Hand each pending delivery of ``alert`` to a Celery task (the outbox catches up if this fails)."""
    from billing.tasks import deliver_budget_alert

    ids = list(alert.deliveries.filter(state=AlertDelivery.State.PENDING).values_list("pk", flat=True))
    queued = 0
    for delivery_id in ids:
        try:
            deliver_budget_alert.delay(delivery_id)
            queued += 1
        except Exception:  # broker down: the retry_budget_alerts beat task delivers it later
            logger.warning("could not queue a budget alert delivery", extra={"delivery_id": delivery_id})
    return queued


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** (attempts - 1)))


def alert_delivery_attempt(*, delivery_id: int, now: datetime) -> str | None:
    """Try one pending, due delivery (row-locked, so no two workers send it); its state afterwards."""
    with transaction.atomic():
        delivery = (
            AlertDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("alert__budget", "channel")
            .filter(pk=delivery_id, state=AlertDelivery.State.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return None
        channel = delivery.channel
        if channel is None or not channel.enabled:
            delivery.state, delivery.last_error = AlertDelivery.State.GIVEN_UP, "the channel was removed or disabled"
        else:
            delivery.attempts += 1
            try:
                sent = alert_deliver(alert=delivery.alert, channel=channel)
            except (DeliveryError, OSError) as exc:
                delivery.last_error = str(exc)[:2000]
                given_up = delivery.attempts >= AlertDelivery.MAX_ATTEMPTS
                delivery.state = AlertDelivery.State.GIVEN_UP if given_up else AlertDelivery.State.PENDING
                delivery.next_attempt_at = now + _backoff(delivery.attempts)
            else:
                if sent:
                    delivery.state, delivery.delivered_at = AlertDelivery.State.DELIVERED, now
                else:
                    delivery.state = AlertDelivery.State.GIVEN_UP
                    delivery.last_error = "refused by the outbound URL policy (see the logs)"
        delivery.save()
        return delivery.state


def alert_deliveries_retry(*, now: datetime, limit: int = 100) -> int:
    """Attempt every pending delivery that is due (beat); how many were delivered."""
    due = AlertDelivery.objects.filter(state=AlertDelivery.State.PENDING, next_attempt_at__lte=now)
    ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    states = [alert_delivery_attempt(delivery_id=pk, now=now) for pk in ids]
    return sum(1 for state in states if state == AlertDelivery.State.DELIVERED)


def alert_payload(alert: BudgetAlert) -> dict[str, Any]:
    """The webhook body (and the facts the email states)."""
    budget = alert.budget
    tenant = budget.owner_tenant()
    period = period_containing(budget.period, tenant.timezone, alert.period_start)
    return {
        "type": EVENT,
        "id": alert.pk,
        "tenant": tenant.slug,
        "budget": {
            "id": budget.pk,
            "scope": budget.scope_label(),
            "model": budget.model,
            "amount_usd": str(budget.amount_usd),
            "period": budget.period,
            "action": budget.action,
        },
        "threshold_percent": alert.threshold,
        "spent_usd": str(alert.spent_usd),
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat() if period.end else None,
        "created_at": alert.created_at.isoformat(),
    }


def _send_email(alert: BudgetAlert, channel: AlertChannel, payload: dict[str, Any]) -> None:
    subject = f"[gateway] {payload['budget']['scope']} reached {alert.threshold}% of its {alert.budget.period} budget"
    body = (
        f"{payload['budget']['scope']} has spent {alert.spent_usd:.4f} USD of its "
        f"{alert.budget.amount_usd:.2f} USD {alert.budget.period} budget ({alert.threshold}% threshold).\n"
        f"Period: {payload['period_start']} to {payload['period_end'] or 'open-ended'}.\n"
        f"Action at 100%: {alert.budget.action}.\n"
    )
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [channel.target])


def _post_webhook(channel: AlertChannel, payload: dict[str, Any]) -> bool:
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "gateway-budget-alerts/1",
        "X-Gateway-Event": EVENT,
        SIGNATURE_HEADER: signature(channel.secret, body),
    }
    timeout = settings.GATEWAY["ALERT_WEBHOOK_TIMEOUT_SECONDS"]
    try:
        # Checked again now and connected to the checked address; redirects are not followed.
        status = outbound.post(channel.target, body, headers, timeout=timeout)
    except outbound.OutboundURLRefused as exc:
        # Not retried: the same answer would come back. The channel stays for an admin to fix.
        logger.error("webhook refused by the outbound URL policy: %s", exc, extra={"channel_id": channel.pk})
        return False
    except OSError as exc:
        raise DeliveryError(f"webhook {channel.target} unreachable: {exc}") from exc
    if status >= 500 or status == 429:
        raise DeliveryError(f"webhook {channel.target} answered {status}")
    if status >= 300:
        logger.warning("webhook refused a budget alert", extra={"channel_id": channel.pk, "status": status})
    return True


def alert_deliver(*, alert: BudgetAlert, channel: AlertChannel) -> bool:
    """Send one alert to one channel; raises ``DeliveryError`` (or an SMTP ``OSError``) to be retried.

    False when the channel's URL is refused by the outbound URL policy (retrying would not help).
    """
    payload = alert_payload(alert)
    if channel.kind == AlertChannel.Kind.EMAIL:
        _send_email(alert, channel, payload)
    elif not _post_webhook(channel, payload):
        return False
    logger.info("budget alert delivered", extra={"alert_id": alert.pk, "channel_id": channel.pk, "kind": channel.kind})
    return True
