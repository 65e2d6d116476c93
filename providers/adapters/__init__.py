"""Provider adapters, one per wire format, looked up by ``Provider.kind``."""

from __future__ import annotations

from providers.adapters.base import ChatAdapter
from providers.adapters.openai import OpenAIAdapter

ADAPTERS: dict[str, ChatAdapter] = {
    OpenAIAdapter.kind: OpenAIAdapter(),
}


def adapter_for(kind: str) -> ChatAdapter | None:
    """The adapter for a provider kind (None when this build has none)."""
    return ADAPTERS.get(kind)
