"""ASGI entry point: /v1/ goes to Channels consumers, everything else to Django."""

from __future__ import annotations

import gc
import os
import re

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_platform.settings")
# Django must be set up before the consumers (and the models they import) load.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from serving.consumers.base import finish_abandoned  # noqa: E402
from serving.consumers.chat import ChatCompletionsConsumer  # noqa: E402
from serving.consumers.completions import CompletionsConsumer  # noqa: E402
from serving.consumers.embeddings import EmbeddingsConsumer  # noqa: E402
from serving.consumers.messages import CountTokensConsumer, MessagesConsumer  # noqa: E402
from serving.consumers.models import ModelsConsumer  # noqa: E402
from serving.consumers.not_found import NotFoundConsumer  # noqa: E402
from serving.consumers.responses import (  # noqa: E402
    InputItemsConsumer,
    InputTokensConsumer,
    ResponsesConsumer,
    StoredResponseConsumer,
)
from serving.consumers.skills import SkillsConsumer  # noqa: E402

# Endpoints at a fixed path (with or without a trailing slash), looked up by path before the regex walk.
fixed_routes = {
    "v1/chat/completions": ChatCompletionsConsumer.as_asgi(),
    "v1/models": ModelsConsumer.as_asgi(),
    "v1/skills": SkillsConsumer.as_asgi(),
    "v1/messages": MessagesConsumer.as_asgi(),
    "v1/messages/count_tokens": CountTokensConsumer.as_asgi(),
    "v1/responses": ResponsesConsumer.as_asgi(),
    "v1/responses/input_tokens": InputTokensConsumer.as_asgi(),
    "v1/embeddings": EmbeddingsConsumer.as_asgi(),
    "v1/completions": CompletionsConsumer.as_asgi(),
}
v1_routes = URLRouter(
    [
        *(re_path(rf"^{re.escape(path)}/?$", consumer) for path, consumer in fixed_routes.items()),
        re_path(r"^v1/responses/(?P<response_id>[A-Za-z0-9_-]{1,64})/?$", StoredResponseConsumer.as_asgi()),
        re_path(r"^v1/responses/(?P<response_id>[A-Za-z0-9_-]{1,64})/input_items/?$", InputItemsConsumer.as_asgi()),
        re_path(r"^v1/", NotFoundConsumer.as_asgi()),
    ]
)
_by_path = {f"/{path}{slash}": consumer for path, consumer in fixed_routes.items() for slash in ("", "/")}


async def http_router(scope, receive, send):  # type: ignore[no-untyped-def]
    """Send /v1/ to the consumers and the rest to Django without a regex walk.

    A fixed endpoint gets the scope ``URLRouter`` would give it (``path_remaining``, ``url_route``);
    any other /v1/ path goes through ``URLRouter``.
    """
    path = scope["path"]
    consumer = _by_path.get(path)
    if consumer is not None and not scope.get("root_path"):
        route = {"args": (), "kwargs": {}}
        return await consumer({**scope, "path_remaining": "", "url_route": route}, receive, send)
    if path.startswith("/v1/"):
        return await v1_routes(scope, receive, send)
    return await django_application(scope, receive, send)


async def lifespan(scope, receive, send):  # type: ignore[no-untyped-def]
    """Server start and stop (uvicorn; Daphne sends none, see ``finish_abandoned_when_daphne_stops``): before
    stopping, answers still being finished for clients that left are awaited, up to the shutdown grace period,
    so their usage is recorded."""
    from django.conf import settings

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await finish_abandoned(float(settings.GATEWAY["SHUTDOWN_GRACE_SECONDS"]))
            await send({"type": "lifespan.shutdown.complete"})
            return


def finish_abandoned_when_daphne_stops() -> bool:
    """Under Daphne, wait for abandoned answers before the server stops, as ``lifespan`` does under uvicorn.

    Daphne implements no ASGI lifespan (django/daphne#264), but it runs on Twisted's asyncio reactor,
    installed before it imports this module, and stops through it: a shutdown trigger that returns a
    Deferred holds the shutdown until the Deferred fires (only "before" triggers are waited for).
    Daphne's own one cancels the applications of open connections; a whole answer cancelled so goes
    on in the background (``GatewayConsumer``). This one waits for those requests, then for their
    answers and the ones whose client had already left. Returns whether the trigger was added.
    """
    import asyncio
    import sys

    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or type(reactor).__name__ != "AsyncioSelectorReactor":
        return False  # not Daphne (uvicorn sends lifespan events instead)
    from django.conf import settings
    from twisted.internet import defer

    def wait() -> defer.Deferred[int]:
        grace = float(settings.GATEWAY["SHUTDOWN_GRACE_SECONDS"])
        return defer.Deferred.fromFuture(asyncio.ensure_future(finish_abandoned(grace)))

    reactor.addSystemEventTrigger("before", "shutdown", wait)
    return True


# Allocations minus deallocations of tracked objects between two collections of the youngest generation.
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collection() -> None:
    """Collect less often, and never scan what was loaded at start-up.

    Python's default (a young-generation collection every 700 net allocations) made the
    collector a large share of the server's CPU under load: measured with ``gc.callbacks``
    at 64 connections, about 230 µs per request (450 µs before the freeze) against 2-5 µs with
    this threshold, most objects of a request being freed by reference counting before it is
    reached. ``gc.freeze`` moves the modules, settings and consumers loaded until now out of
    every later collection (a full one took 130 ms of the event loop, 30 ms after it).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


finish_abandoned_when_daphne_stops()
tune_garbage_collection()
application = ProtocolTypeRouter({"http": http_router, "lifespan": lifespan})
