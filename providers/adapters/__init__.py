"""Provider adapters, one per wire format, looked up by ``Provider.kind``."""

from __future__ import annotations

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import ChatAdapter
from providers.adapters.ollama import OllamaAdapter
from providers.adapters.openai import OpenAIAdapter

ADAPTERS: dict[str, ChatAdapter] = {
    adapter.kind: adapter for adapter in (OpenAIAdapter(), AnthropicAdapter(), OllamaAdapter())
}


def adapter_for(kind: str) -> ChatAdapter | None:
    """The adapter for a provider kind (None when this build has none)."""
    return ADAPTERS.get(kind)
