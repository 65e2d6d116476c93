"""Does embedding stall the event loop? ``python -m bench.embedder_loop``.

While 8 long prompts are embedded by the local model (``caching.embedders.local``),
a ticker on the same event loop records how long each ``asyncio.sleep(0.005)``
really took. If the model ran on the loop, the gaps would be as long as one
embedding. The suite asserts the structure (the model runs in a worker thread:
``tests/caching/test_local_embedder.py``); this prints the timing, which depends
on the machine and its load and so is not asserted anywhere.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_platform.settings")


async def measure(rounds: int = 5) -> tuple[list[float], float]:
    """Loop gaps (seconds) during ``rounds`` batches of 8 embeddings, and the mean time of one embedding."""
    from caching.embedders import local

    model = local.shared()
    model.load()
    text = "Summarise the quarterly sales report and list the anomalies in every region " * 3
    started = time.perf_counter()
    for _ in range(10):
        model.embed_sync(text)
    one = (time.perf_counter() - started) / 10
    gaps: list[float] = []
    for _ in range(rounds):
        ticks: list[float] = []

        async def ticker(ticks: list[float] = ticks) -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        running = asyncio.ensure_future(ticker())
        await asyncio.gather(*(model.embed(text) for _ in range(8)))
        running.cancel()
        gaps += [b - a for a, b in itertools.pairwise(ticks)]
    return gaps, one


def main() -> None:
    import django

    django.setup()
    gaps, one = asyncio.run(measure())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    median, worst = statistics.median(gaps) * 1000, max(gaps) * 1000
    print(
        f"one embedding: {one * 1000:.1f} ms; loop tick while embedding: median {median:.1f} ms, "
        f"max {worst:.1f} ms over {len(gaps)} ticks (nominal 5 ms; load average {load})"
    )


if __name__ == "__main__":
    main()
