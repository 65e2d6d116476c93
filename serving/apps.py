from __future__ import annotations

from django.apps import AppConfig


class ServingConfig(AppConfig):
    """The ``/v1/`` request path: consumers and the steps of a request.

    It owns one model, ``StoredResponse`` (``store: true`` answers of
    ``/v1/responses``); otherwise it reads the configuration snapshot and calls
    into ``routing``, ``caching``, ``billing`` and ``providers``; none of those
    imports it.
    """

    name = "serving"
    verbose_name = "Serving"
