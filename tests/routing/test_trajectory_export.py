"""The beat-driven trajectory export (seed 003): one JSON line per request, a cursor, rotation."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from django.utils import timezone

from billing.models import UsageEvent
from routing import tasks
from routing.telemetry import ExportConfig, export_new, read_cursor

pytestmark = pytest.mark.django_db


def events(count: int, *, age_seconds: int = 60) -> list[UsageEvent]:
    now = timezone.now()
    made = [
        UsageEvent.objects.create(
            request_id=uuid.uuid4().hex,
            endpoint="chat.completions",
            requested_model="auto",
            tier="code_gen",
            model="sonnet",
            provider="anthropic",
            prompt_tokens=1000,
            completion_tokens=50,
            cache_read_tokens=800,
            cost_usd=Decimal("0.001"),
            status_code=200,
            cache_status="MISS",
            session="s1",
            route_reason={"tier": "code_gen", "score": 0.42, "reason": "auto", "cascade": {"escalated": False}},
            tokens_saved={"trim_context": 120},
            attempts=[{"model": "sonnet", "error": ""}],
            started_at=now,
            finished_at=now,
        )
        for _ in range(count)
    ]
    UsageEvent.objects.filter(pk__in=[e.pk for e in made]).update(recorded_at=now - timedelta(seconds=age_seconds))
    return made


def lines(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_each_request_is_exported_once_with_its_decision(tmp_path) -> None:
    config = ExportConfig(tmp_path / "trajectory.jsonl", max_bytes=10**9, backups=3)
    first = events(3)
    events(1, age_seconds=0)  # not settled yet: a late-committing drain could still fill the gap before it
    assert export_new(config) == 3
    assert export_new(config) == 0
    written = lines(config.path)
    assert [line["request_id"] for line in written] == [e.request_id for e in first]
    line = written[0]
    assert (
        line["route"]["tier"] == "code_gen" and line["route"]["score"] == 0.42 and line["cascade"]["escalated"] is False
    )
    assert line["tokens"] == {"prompt": 1000, "completion": 50, "cache_read": 800, "cache_write": 0}
    assert line["tokens_saved"] == {"trim_context": 120} and line["cost_usd"] == "0.0010000000"
    assert line["hops"] == [{"model": "sonnet", "error": ""}] and line["session"] == "s1"
    assert read_cursor(config.path) == first[-1].pk


def test_the_file_rotates_and_keeps_its_backups(tmp_path) -> None:
    config = ExportConfig(tmp_path / "trajectory.jsonl", max_bytes=1, backups=2)
    for _ in range(4):
        events(1)
        assert export_new(config) == 1
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".cursor"))
    assert names == ["trajectory.jsonl", "trajectory.jsonl.1", "trajectory.jsonl.2"]
    assert all(len(lines(tmp_path / name)) == 1 for name in names)


def test_the_beat_task_exports_to_the_configured_path(tmp_path, settings) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "TRAJECTORY_EXPORT_PATH": str(tmp_path / "logs" / "trajectory.jsonl")}
    events(2)
    assert tasks.export_trajectories.apply().get() == 2
    assert len(lines(tmp_path / "logs" / "trajectory.jsonl")) == 2
    settings.GATEWAY = {**settings.GATEWAY, "TRAJECTORY_EXPORT_PATH": ""}
    assert tasks.export_trajectories.apply().get() == 0
