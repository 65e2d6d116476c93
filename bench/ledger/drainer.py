"""``python -m bench.ledger.drainer``: the usage drain and the in-flight reaper in a loop, as beat runs them.

``LEDGER_DRAIN_PAUSE_SECONDS`` pauses after each batch is committed and before it
is acknowledged (the window a SIGKILL "mid-batch" must hit); ``LEDGER_CLAIM_IDLE_MS``
shortens the takeover of records (and spool files) a killed drainer left behind.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_platform.settings")
django.setup()

from django.db import connections  # noqa: E402

from billing import inflight, usage  # noqa: E402

logger = logging.getLogger("bench.ledger.drainer")


def main() -> None:
    usage.CLAIM_IDLE_MS = int(os.environ.get("LEDGER_CLAIM_IDLE_MS", str(usage.CLAIM_IDLE_MS)))
    pause = float(os.environ.get("LEDGER_DRAIN_PAUSE_SECONDS", "0"))
    batch = int(os.environ.get("LEDGER_DRAIN_BATCH", "50"))
    real_write = usage.write_events

    def write_then_pause(records):  # type: ignore[no-untyped-def]
        written = real_write(records)
        time.sleep(pause)  # committed, not yet acknowledged
        return written

    if pause:
        usage.write_events = write_then_pause
    ready = os.environ.get("LEDGER_READY_FILE", "")
    reaped_at = 0.0
    while True:
        if ready:  # set up and about to drain: the run may start its load
            Path(ready).touch()
            ready = ""
        try:
            read = usage.drain(batch_size=batch, max_batches=1)
            if read:
                logger.info("drained %d records", read)
            if time.monotonic() - reaped_at > 0.5:
                reaped = inflight.reap()
                reaped_at = time.monotonic()
                if reaped.billed or reaped.already_billed:
                    logger.info(
                        "reaped %d in-flight records (%d already billed)",
                        len(reaped.billed),
                        len(reaped.already_billed),
                    )
            if not read:
                time.sleep(0.1)
        except Exception as exc:  # Redis or PostgreSQL down: retry, as the beat tasks would
            logger.warning("drain failed: %s", exc.__class__.__name__)
            for conn in connections.all(initialized_only=True):
                conn.close_pool() if hasattr(conn, "close_pool") else conn.close()
            time.sleep(0.3)


if __name__ == "__main__":
    main()
