"""Azure OpenAI: the OpenAI wire format on Azure's deployment URLs.

``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=V`` (and
``/embeddings``), the key in the ``api-key`` header. ``base_url`` is the resource
root (``https://RESOURCE.openai.azure.com``); a model's ``upstream_model`` is the
Azure *deployment name*; the provider's ``api_version`` defaults to ``DEFAULT_API_VERSION``.
Bodies and answers are the OpenAI pass-through of :mod:`providers.adapters.openai`
(Azure ignores ``model`` in the body; ``stream_options.include_usage`` is honoured
from API version 2024-09-01 on).
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from gateway_platform.logging import request_id_var
from providers import errors, http
from providers.adapters.base import JSON, Deployment, EmbeddingResult, ProviderConfig
from providers.adapters.openai import OpenAIAdapter, parse_embeddings_response

DEFAULT_API_VERSION = "2024-10-21"


def build_headers(provider: ProviderConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id_var.get()}
    if provider.api_key:
        headers["api-key"] = provider.api_key
    return headers


def openai_url(provider: ProviderConfig, path: str) -> str:
    """``path`` under the resource's ``/openai/``, with the provider's ``api-version``."""
    version = quote(provider.api_version or DEFAULT_API_VERSION, safe="")
    return f"{provider.base_url.rstrip('/')}/openai/{path}?api-version={version}"


def build_url(deployment: Deployment, operation: str) -> str:
    """``operation``: ``chat/completions`` or ``embeddings``."""
    name = quote(deployment.upstream_model, safe="")
    return openai_url(deployment.provider, f"deployments/{name}/{operation}")


class AzureOpenAIAdapter(OpenAIAdapter):
    kind: ClassVar[str] = "azure"

    def _url(self, deployment: Deployment) -> str:
        return build_url(deployment, "chat/completions")

    def _headers(self, provider: ProviderConfig) -> dict[str, str]:
        return build_headers(provider)


class AzureOpenAIEmbeddingsAdapter:
    """``/v1/embeddings`` on an Azure deployment (the answer is OpenAI's shape)."""

    kind: ClassVar[str] = "azure"
    accepts_token_input: ClassVar[bool] = True

    async def embed(self, deployment: Deployment, body: JSON) -> EmbeddingResult:
        provider = deployment.provider
        payload = {**body, "model": deployment.upstream_model}
        resp = await http.post_json(provider, build_url(deployment, "embeddings"), payload, build_headers(provider))
        try:
            usage = parse_embeddings_response(resp.body)
        except ValueError:
            raise errors.upstream_status(provider.name, 502, "malformed JSON answer") from None
        return EmbeddingResult(body=resp.body, usage=usage)
