"""``manage.py mock_upstream``: run the bundled fake LLM provider in the foreground."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from providers.mock_upstream.server import start_mock

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8787


def _runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        return asyncio.run
    return uvloop.run


class Command(BaseCommand):
    help = (
        "Run the mock upstream (fake OpenAI / Anthropic / Ollama provider) until "
        "interrupted. Prints 'mock upstream listening on http://HOST:PORT'."
    )
    requires_system_checks = ()  # never touches the database
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first token")
        parser.add_argument(
            "--tokens-per-second",
            type=float,
            default=0.0,
            help="pacing of streamed tokens (0 = unpaced)",
        )
        parser.add_argument(
            "--latency",
            type=float,
            default=0.0,
            help="extra seconds for non-streaming answers",
        )
        parser.add_argument(
            "--max-events", type=int, default=1000, help="request records kept for /_mock/events (its ledger)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _runner()(
            self._serve(
                host=options["host"],
                port=options["port"],
                ttft=options["ttft"],
                tokens_per_second=options["tokens_per_second"],
                latency=options["latency"],
                max_events=options["max_events"],
            )
        )

    async def _serve(
        self,
        *,
        host: str,
        port: int,
        ttft: float,
        tokens_per_second: float,
        latency: float,
        max_events: int,
    ) -> None:
        runner, bound_port = await start_mock(
            host, port, ttft=ttft, tokens_per_second=tokens_per_second, latency=latency, max_events=max_events
        )
        shown_host = f"[{host}]" if ":" in host else host
        message = f"mock upstream listening on http://{shown_host}:{bound_port}"
        logger.info(message)
        self.stdout.write(message)
        self.stdout.flush()

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            logger.info("mock upstream stopping")
            await runner.cleanup()
