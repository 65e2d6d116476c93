"""Provider adapters, one per wire format, looked up by ``Provider.kind``."""

from __future__ import annotations

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.azure import AzureOpenAIAdapter, AzureOpenAIEmbeddingsAdapter
from providers.adapters.base import (
    ChatAdapter,
    Deployment,
    EmbeddingsAdapter,
    NativeRequest,
    PassthroughAdapter,
    TextCompletionAdapter,
)
from providers.adapters.bedrock import BedrockAdapter
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.ollama import OllamaAdapter
from providers.adapters.ollama_text import OllamaEmbeddingsAdapter, OllamaTextAdapter
from providers.adapters.openai import OpenAIAdapter, OpenAIEmbeddingsAdapter, OpenAITextAdapter
from providers.adapters.openai_responses import OpenAIResponsesAdapter

ADAPTERS: dict[str, ChatAdapter] = {
    adapter.kind: adapter
    for adapter in (
        OpenAIAdapter(),
        AnthropicAdapter(),
        OllamaAdapter(),
        AzureOpenAIAdapter(),
        GeminiAdapter(),
        BedrockAdapter(),
    )
}


def adapter_for(kind: str) -> ChatAdapter | None:
    """The adapter for a provider kind (None when this build has none)."""
    return ADAPTERS.get(kind)


# Inbound APIs an upstream can take unchanged, by API name (``NativeRequest.api``).
PASSTHROUGH_ADAPTERS: dict[str, PassthroughAdapter] = {
    adapter.api: adapter for adapter in (AnthropicAdapter(), OpenAIResponsesAdapter())
}


def passthrough_adapter_for(request: NativeRequest, deployment: Deployment) -> PassthroughAdapter | None:
    """The adapter that sends ``request`` to ``deployment`` unchanged (None: translate it instead)."""
    adapter = PASSTHROUGH_ADAPTERS.get(request.api)
    return adapter if adapter is not None and adapter.serves(deployment) else None


# Anthropic, Gemini and Bedrock (through this gateway) have neither embeddings nor legacy text completions.
EMBEDDING_ADAPTERS: dict[str, EmbeddingsAdapter] = {
    adapter.kind: adapter
    for adapter in (OpenAIEmbeddingsAdapter(), OllamaEmbeddingsAdapter(), AzureOpenAIEmbeddingsAdapter())
}
TEXT_COMPLETION_ADAPTERS: dict[str, TextCompletionAdapter] = {
    adapter.kind: adapter for adapter in (OpenAITextAdapter(), OllamaTextAdapter())
}


def embedding_adapter_for(kind: str) -> EmbeddingsAdapter | None:
    """The ``/v1/embeddings`` adapter for a provider kind (None: the kind has no embeddings)."""
    return EMBEDDING_ADAPTERS.get(kind)


def text_completion_adapter_for(kind: str) -> TextCompletionAdapter | None:
    """The ``/v1/completions`` adapter for a provider kind (None: the kind has no text completions)."""
    return TEXT_COMPLETION_ADAPTERS.get(kind)
