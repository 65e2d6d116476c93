"""Celery tasks of routing (scheduled in ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

from celery import shared_task

from routing import telemetry


@shared_task(ignore_result=True)
def export_trajectories() -> int:
    """Append new requests to the trajectory JSONL file (seed 003 telemetry export), with rotation."""
    return telemetry.export_trajectories()
