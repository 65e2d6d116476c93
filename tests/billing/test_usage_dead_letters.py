"""No usage record can block another: normalised when built and read, split down to the record, dead-lettered."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import fields
from decimal import Decimal

import httpx2
import orjson
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from billing import deadletter, records, usage
from billing.models import UsageEvent
from gateway_platform.redis_clients import sync_client
from tests.factories import make_key, make_model, make_provider

pytestmark = pytest.mark.django_db(transaction=True)


def payload(**fields: object) -> dict[str, object]:
    now = timezone.now().isoformat()
    values: dict[str, object] = {
        "request_id": uuid.uuid4().hex,
        "endpoint": "chat.completions",
        "started_at": now,
        "finished_at": now,
        "status_code": 200,
        "cost_usd": "0.001",
    }
    values.update(fields)
    return values


def queue(*items: dict[str, object] | bytes) -> None:
    client = sync_client()
    for item in items:
        client.xadd(usage.STREAM, {"e": item if isinstance(item, bytes) else orjson.dumps(item)})


@pytest.fixture(autouse=True)
def _empty_dead_letters() -> Iterator[None]:
    sync_client().delete(deadletter.DEAD_STREAM)
    yield
    sync_client().delete(deadletter.DEAD_STREAM)


def test_it_repairs_a_record_when_it_is_built():
    now = timezone.now()
    record = usage.UsageRecord(
        request_id="r" * 80,
        endpoint="chat.completions",
        started_at=now,
        finished_at=now,
        status_code=400,
        requested_model="x" * 300 + "\x00",
        model="gpt\x00-4",
        prompt_tokens=-5,
        completion_tokens=10**12,
        cost_usd=Decimal("-0.5"),
        cost_saved_usd=Decimal("NaN"),
        cache_similarity=float("inf"),
        attempts=[{"error": "upstream said \x00", "seconds": float("nan")}],
        route_reason={"why\x00": ["a\x00"]},
        prompt_cache_saved_usd=Decimal("-0.25"),  # a cache write can cost more than it saves: kept
        session="s" * 300,
    )
    assert len(record.request_id) == 64
    assert record.requested_model == "x" * 200
    assert record.model == "gpt-4"
    assert (record.prompt_tokens, record.completion_tokens) == (0, records.INT_MAX)
    assert record.cost_usd == 0 and record.cost_saved_usd == 0 and record.cache_similarity is None
    assert record.attempts == [{"error": "upstream said ", "seconds": None}]
    assert record.route_reason == {"why": ["a"]}
    assert record.prompt_cache_saved_usd == Decimal("-0.25") and record.session == "s" * 200


def test_clean_json_fields_are_left_as_they_are():
    attempts = [{"provider": "p", "model": "m", "seconds": 0.2, "error": None}]
    now = timezone.now()
    record = usage.UsageRecord(
        request_id="a" * 32, endpoint="e", started_at=now, finished_at=now, status_code=200, attempts=attempts
    )
    assert record.attempts is attempts


def test_the_limits_match_the_usage_event_columns():
    event_fields = {f.name: f for f in UsageEvent._meta.get_fields() if hasattr(f, "attname")}
    for name, limit in records.TEXT_LIMITS.items():
        assert event_fields[name].max_length == limit, name
    for f in fields(usage.UsageRecord):
        assert f.name.removesuffix("_id") in event_fields or f.name in event_fields, f.name


def test_one_malformed_record_cannot_block_the_records_behind_it():
    good = [payload(tenant_id=n, prompt_tokens=n) for n in range(1, 6)]
    poison = payload(
        requested_model="m" * 300,
        model="nul\x00model",
        prompt_tokens=-3,
        completion_tokens="7",
        field_from_a_newer_version={"x": 1},
    )
    unreadable = payload(started_at="yesterday")
    queue(good[0], poison, good[1], b"{not json", good[2], unreadable, *good[3:], b"[1, 2]")
    usage.drain()
    assert UsageEvent.objects.filter(request_id__in=[g["request_id"] for g in good]).count() == 5
    repaired = UsageEvent.objects.get(request_id=poison["request_id"])
    assert repaired.requested_model == "m" * 200 and repaired.model == "nulmodel"
    assert (repaired.prompt_tokens, repaired.completion_tokens) == (0, 7)
    letters = deadletter.entries(sync_client())
    assert [letter.error.split(":")[0] for letter in letters] == [
        "not JSON",
        "started_at is not a timestamp",
        "not a JSON object",
    ]
    assert letters[1].request_id == unreadable["request_id"]
    assert sync_client().xlen(usage.STREAM) == 0


def test_a_batch_the_database_refuses_is_split_down_to_the_one_record(monkeypatch):
    batch = [payload(tenant_id=n) for n in range(1, 40)]
    refused = batch[17]["request_id"]

    def writer(rows: list[dict[str, object]]) -> None:
        # A derived-row writer (like cascade outcomes) that a new deploy broke for one record.
        if any(row["request_id"] == refused for row in rows):
            raise ValueError("outcome writer cannot handle this record")

    monkeypatch.setattr(usage, "_record_writers", [writer])
    queue(*batch)
    usage.drain()
    stored = set(
        UsageEvent.objects.filter(request_id__in=[b["request_id"] for b in batch]).values_list("request_id", flat=True)
    )
    assert stored == {b["request_id"] for b in batch} - {refused}
    [letter] = deadletter.entries(sync_client())
    assert letter.request_id == refused and "outcome writer cannot handle this record" in letter.error
    assert sync_client().xlen(usage.STREAM) == 0

    # The fix is deployed: the re-drive stores the record and empties the dead-letter stream.
    monkeypatch.setattr(usage, "_record_writers", [])
    call_command("usage_dead_letters", "redrive")
    assert UsageEvent.objects.filter(request_id=refused).exists()
    assert deadletter.depth(sync_client()) == 0


def test_a_redrive_keeps_what_is_still_refused_and_discard_removes_it():
    bad = payload(finished_at="never")
    queue(bad)
    usage.drain()
    [letter] = deadletter.entries(sync_client())
    with pytest.raises(CommandError):
        call_command("usage_dead_letters", "redrive", letter.id)
    assert deadletter.depth(sync_client()) == 1
    call_command("usage_dead_letters", "discard", letter.id)
    assert deadletter.depth(sync_client()) == 0


def test_spooled_records_with_a_poison_line_still_land(settings, tmp_path):
    settings.GATEWAY = {**settings.GATEWAY, "USAGE_SPOOL_DIR": tmp_path}
    good = payload()
    (tmp_path / "usage-web-1.jsonl").write_bytes(
        b"\n".join([orjson.dumps(payload(status_code="x")), orjson.dumps(good)])
    )
    usage.drain()
    assert UsageEvent.objects.filter(request_id=good["request_id"]).exists()
    assert deadletter.depth(sync_client()) == 1
    assert not list(tmp_path.iterdir())


def test_a_spool_file_stranded_by_a_dead_drainer_is_replayed(settings, tmp_path, monkeypatch):
    settings.GATEWAY = {**settings.GATEWAY, "USAGE_SPOOL_DIR": tmp_path}
    good = payload()
    stranded = tmp_path / "usage-web-2.replaying"  # claimed by a drainer that was killed mid-replay
    stranded.write_bytes(orjson.dumps(good) + b"\n")
    assert usage.spool_depth() == 1  # what /metrics and /health report
    usage.drain()
    assert not UsageEvent.objects.filter(request_id=good["request_id"]).exists()  # maybe still being replayed
    old = time.time() - usage.CLAIM_IDLE_MS / 1000 - 5
    os.utime(stranded, (old, old))
    usage.drain()
    assert UsageEvent.objects.filter(request_id=good["request_id"]).exists()
    assert not list(tmp_path.iterdir())
    assert usage.spool_depth() == 0


def test_a_request_with_an_overlong_model_does_not_stop_billing(gateway_url, mock_upstream_url, drained_events):
    make_model(make_provider(f"{mock_upstream_url}/v1", name=f"mockai-{uuid.uuid4().hex[:6]}"), name="dl-small")
    _, secret = make_key()
    headers = {"Authorization": f"Bearer {secret}", "X-Gateway-Cache": "no-store"}
    message = [{"role": "user", "content": "hi"}]
    poison = httpx2.post(
        f"{gateway_url}/v1/chat/completions", headers=headers, json={"model": "x" * 300 + "\x00", "messages": message}
    )
    assert poison.status_code == 400
    good = httpx2.post(
        f"{gateway_url}/v1/chat/completions", headers=headers, json={"model": "dl-small", "messages": message}
    )
    assert good.status_code == 200
    ids = [poison.headers["x-request-id"], good.headers["x-request-id"]]
    events = drained_events(2, request_id__in=ids)
    assert len(events) == 2
    assert {e.requested_model for e in events} == {"x" * 200, "dl-small"}


def test_platform_admins_see_and_redrive_dead_letters_in_the_admin(monkeypatch):
    queue(payload(started_at="not a time"))
    usage.drain()
    admin = get_user_model().objects.create_superuser("dl-root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/billing/usageevent/dead-letters/")
    assert page.status_code == 200 and b"started_at is not a timestamp" in page.content
    assert b"dead-letters/" in client.get("/admin/billing/usageevent/").content
    staff = get_user_model().objects.create_user("dl-staff", "staff@example.com", "pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/billing/usageevent/dead-letters/").status_code == 403
    [letter] = deadletter.entries(sync_client())
    assert (
        client.post("/admin/billing/usageevent/dead-letters/", {"action": "discard", "ids": [letter.id]}).status_code
        == 403
    )
    assert deadletter.depth(sync_client()) == 1


def test_recording_never_raises_for_a_malformed_record():
    now = timezone.now()
    record = usage.UsageRecord(
        request_id="b" * 32, endpoint="e", started_at=now, finished_at=now, status_code=200, tokens_saved={"x": -1}
    )
    asyncio.run(usage.record(record))
    usage.drain()
    assert UsageEvent.objects.filter(request_id="b" * 32).exists()
