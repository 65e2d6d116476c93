"""The provider embedder: an embedding model configured in the gateway, called through its adapters.

The policy names a ``Model`` by its public name (e.g. ``text-embedding-3-small``
on an OpenAI provider, ``nomic-embed-text`` on Ollama); the request goes out
through ``providers.adapters.embedding_adapter_for`` like ``/v1/embeddings``
does, asking for the policy's ``dimensions``. A vector of another size is
refused by the caller. Errors are logged and the request goes on without the
semantic layer.

These calls are paid for: each answered call's tokens (the provider's count, else
an estimate) are kept in ``billed`` for the request path to bill to the tenant
(``serving.cache_step``), which embeds only while the request is admitted.
"""

from __future__ import annotations

import logging

import orjson

from providers.adapters import embedding_adapter_for
from providers.adapters.base import Deployment, Usage
from providers.adapters.tokens import estimate_tokens

logger = logging.getLogger(__name__)

MAX_CHARS = 8000  # about 2,000 tokens: well inside every embedding model's input limit


class ProviderEmbedder:
    """Embeds through one deployment; ``signature`` names the model and size (one instance per request)."""

    billable = True  # its calls cost money: made only inside the request's admission, and billed

    def __init__(self, deployment: Deployment, dimensions: int) -> None:
        self.deployment = deployment
        self.dimensions = dimensions
        self.signature = f"provider:{deployment.name}:{dimensions}"
        self.billed: list[Usage] = []  # the tokens of each call the provider answered, not yet billed

    async def embed(self, text: str) -> list[float] | None:
        """The model's vector for ``text`` (None when too long or the call failed)."""
        if len(text) > MAX_CHARS:
            return None
        adapter = embedding_adapter_for(self.deployment.provider.kind)
        if adapter is None:
            logger.warning("provider kind %s has no embeddings", self.deployment.provider.kind)
            return None
        body = {"model": self.deployment.name, "input": text, "dimensions": self.dimensions}
        try:
            result = await adapter.embed(self.deployment, body)
            self.billed.append(result.usage or Usage(prompt_tokens=estimate_tokens(text), estimated=True))
            vector = orjson.loads(result.body)["data"][0]["embedding"]
        except Exception:
            logger.warning("embedding through %s failed; semantic layer skipped", self.deployment.name, exc_info=True)
            return None
        if not isinstance(vector, list):
            return None
        norm = sum(x * x for x in vector) ** 0.5 or 1.0
        return [x / norm for x in vector]
