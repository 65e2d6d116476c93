"""Active health probes: a cheap "list models" call per provider.

``probe`` asks one provider for its model list (OpenAI ``GET {base_url}/models``,
Anthropic ``GET {base_url}/v1/models``, Ollama ``GET /api/tags``, Azure OpenAI
``GET /openai/models?api-version=V``, Gemini ``GET /v1beta/models``, Bedrock's
signed ``GET /foundation-models`` on its control plane) with a short timeout and
classifies the outcome:

- ``healthy``: a well-formed answer within ``SLOW_PROBE_MS``;
- ``degraded``: a well-formed but slow answer, or an answer that says the
  server is up but the probe could not tell more (HTTP 429, or another 4xx
  such as a server without a model-list endpoint);
- ``down``: unreachable, timed out, dropped, credentials rejected, 5xx or a
  malformed answer: exactly the failures that would count against a circuit
  on the request path.

``probe_all`` runs the probes of all enabled providers concurrently, stores the
outcome in ``ProviderHealth`` and feeds the circuit breakers (see its docstring).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

import orjson
from django.db.models import F, Prefetch
from django.utils import timezone
from redis.exceptions import RedisError

from gateway_platform.errors import GatewayError
from providers import circuit, errors, http
from providers.adapters import anthropic, azure, bedrock, gemini, ollama, openai
from providers.adapters.base import ProviderConfig
from providers.credentials import provider_config
from providers.models import Model, Provider, ProviderHealth

logger = logging.getLogger(__name__)

Status = ProviderHealth.Status

# A probe never holds a worker longer than this, whatever the provider's own timeouts say.
PROBE_MAX_SECONDS = 10.0
PROBE_READ_SECONDS = 5.0
# A correct answer slower than this marks the provider degraded.
SLOW_PROBE_MS = 2_000
ERROR_MAX_CHARS = 300


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe found. ``answered`` is True when the provider returned a valid model list."""

    provider_id: int
    provider: str
    status: str
    latency_ms: int | None = None
    error: str = ""
    answered: bool = False


def probe_config(provider: ProviderConfig) -> ProviderConfig:
    """``provider`` with probe timeouts: its connect timeout plus a short read, capped."""
    connect = min(provider.connect_timeout, PROBE_MAX_SECONDS)
    return dataclasses.replace(
        provider,
        connect_timeout=connect,
        read_timeout=PROBE_READ_SECONDS,
        total_timeout=min(connect + PROBE_READ_SECONDS, PROBE_MAX_SECONDS),
    )


def _check_model_list(provider: ProviderConfig, body: bytes, key: str = "data") -> None:
    """A JSON object whose ``key`` is a list (502 otherwise)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise errors.upstream_status(provider.name, 502, "malformed model list")


async def _openai_models(provider: ProviderConfig) -> None:
    url = provider.base_url.rstrip("/") + "/models"
    resp = await http.get_json(provider, url, openai.build_headers(provider))
    _check_model_list(provider, resp.body)


async def _anthropic_models(provider: ProviderConfig) -> None:
    url = provider.base_url.rstrip("/") + "/v1/models"
    resp = await http.get_json(provider, url, anthropic.build_headers(provider))
    _check_model_list(provider, resp.body)


async def _ollama_models(provider: ProviderConfig) -> None:
    await ollama.list_models(provider)


async def _azure_models(provider: ProviderConfig) -> None:
    resp = await http.get_json(provider, azure.openai_url(provider, "models"), azure.build_headers(provider))
    _check_model_list(provider, resp.body)


async def _gemini_models(provider: ProviderConfig) -> None:
    url = f"{provider.base_url.rstrip('/')}/{gemini.API_VERSION}/models"
    resp = await http.get_json(provider, url, gemini.build_headers(provider))
    _check_model_list(provider, resp.body, "models")


async def _bedrock_models(provider: ProviderConfig) -> None:
    url = bedrock.control_plane_url(provider, "/foundation-models")
    headers = bedrock.sign(provider, url, b"", {"Accept": "application/json"}, method="GET")
    resp = await http.get_json(provider, url, headers, accept=(403,))
    if resp.status == 403:
        if "AccessDenied" in resp.headers.get("x-amzn-ErrorType", ""):
            # Valid credentials without bedrock:ListFoundationModels: the provider is up, the probe cannot
            # tell more (degraded, fed to no circuit), as for a server without a model-list endpoint.
            raise GatewayError(
                f"Provider '{provider.name}' may not list foundation models (bedrock:ListFoundationModels).",
                status=403,
                code="probe_not_permitted",
            )
        http.raise_for_status(provider, resp.status, resp.headers, resp.body)  # expired or wrong keys: down
    _check_model_list(provider, resp.body, "modelSummaries")


_PROBES: dict[str, Callable[[ProviderConfig], Awaitable[None]]] = {
    Provider.Kind.OPENAI: _openai_models,
    Provider.Kind.ANTHROPIC: _anthropic_models,
    Provider.Kind.OLLAMA: _ollama_models,
    Provider.Kind.AZURE: _azure_models,
    Provider.Kind.GEMINI: _gemini_models,
    Provider.Kind.BEDROCK: _bedrock_models,
}


def scrub(message: str, provider: ProviderConfig) -> str:
    """A short error text without the provider's credential in it."""
    if provider.api_key:
        message = message.replace(provider.api_key, "***")
    return message[:ERROR_MAX_CHARS]


def _failed(provider: ProviderConfig, err: GatewayError, latency_ms: int) -> ProbeResult:
    # Retryable errors are the ones the request path counts against a circuit, except
    # rate limiting: the provider is up, the probe just could not tell more.
    down = err.retryable and err.code != "upstream_rate_limited"
    return ProbeResult(
        provider_id=provider.id,
        provider=provider.name,
        status=Status.DOWN if down else Status.DEGRADED,
        latency_ms=None if down else latency_ms,
        error=scrub(err.message, provider),
    )


async def probe(provider: ProviderConfig) -> ProbeResult:
    """Probe one provider with a cheap model-list call; never raises, never exceeds ~10 s."""
    check = _PROBES.get(provider.kind)
    if check is None:
        return ProbeResult(provider.id, provider.name, Status.UNKNOWN, error=f"no probe for kind {provider.kind!r}")
    config = probe_config(provider)
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(config), timeout=config.total_timeout + 1.0)
    except GatewayError as err:
        return _failed(provider, err, _elapsed_ms(started))
    except TimeoutError:
        return _failed(provider, errors.upstream_timeout(provider.name), _elapsed_ms(started))
    except Exception as exc:
        logger.warning("health probe crashed", extra={"provider": provider.name}, exc_info=True)
        return ProbeResult(provider.id, provider.name, Status.DOWN, error=f"probe failed: {exc.__class__.__name__}")
    latency_ms = _elapsed_ms(started)
    if latency_ms >= SLOW_PROBE_MS:
        return ProbeResult(
            provider.id, provider.name, Status.DEGRADED, latency_ms, f"slow answer: {latency_ms} ms", answered=True
        )
    return ProbeResult(provider.id, provider.name, Status.HEALTHY, latency_ms, answered=True)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


async def _probe_many(configs: list[ProviderConfig]) -> list[ProbeResult]:
    try:
        return list(await asyncio.gather(*(probe(config) for config in configs)))
    finally:
        await http.close_sessions()  # the loop ends with asyncio.run: do not leak its sessions


def _enabled_providers(provider_ids: Collection[int] | None) -> list[Provider]:
    queryset = Provider.objects.filter(enabled=True).prefetch_related(
        Prefetch("models", queryset=Model.objects.filter(enabled=True), to_attr="enabled_models")
    )
    if provider_ids is not None:
        queryset = queryset.filter(pk__in=list(provider_ids))
    return list(queryset)


def save_result(result: ProbeResult) -> None:
    """Store ``result`` as its provider's ``ProviderHealth`` row."""
    down = result.status == Status.DOWN
    values = {
        "status": result.status,
        "latency_ms": result.latency_ms,
        "last_error": result.error[:ERROR_MAX_CHARS],
        "checked_at": timezone.now(),
    }
    ProviderHealth.objects.update_or_create(
        provider_id=result.provider_id,
        defaults={**values, "consecutive_failures": F("consecutive_failures") + 1 if down else 0},
        create_defaults={**values, "consecutive_failures": int(down)},
    )


def feed_circuits(result: ProbeResult, deployments: list[str]) -> None:
    """Report ``result`` to the circuits of ``deployments`` (the rule is in ``probe_all``)."""
    try:
        if result.status == Status.DOWN:
            for name in deployments:
                circuit.record_failure_sync(name)
        elif result.answered:
            for name in deployments:
                circuit.record_probe_success_sync(name)
    except RedisError:
        logger.warning("circuit state unavailable; probe not recorded", extra={"provider": result.provider})


def probe_all(provider_ids: Collection[int] | None = None) -> list[ProbeResult]:
    """Probe every enabled provider (or those of ``provider_ids``) and record the outcome.

    Synchronous; call it from a worker, a command or a sync view, never from a
    running event loop. Providers are configured exactly as the gateway sees
    them (``providers.credentials.provider_config``: environment credentials and the
    mock-upstream override apply). Probes run concurrently; each result is
    written to ``ProviderHealth`` and fed to the circuits of the provider's
    enabled models:

    - a ``down`` probe counts one failure on every model's circuit, so a dead
      provider opens its circuits after ``GATEWAY_CIRCUIT_FAILURES`` probes even
      without traffic;
    - a successful probe closes a circuit only when it is ``half_open``, or
      ``open`` and past its reset timeout, i.e. when the gateway itself would
      let a trial request through. It never closes a circuit still inside its
      open window, and it never touches a closed circuit's failure count;
    - a ``degraded`` probe without a valid answer (429, other 4xx) reports nothing.
    """
    providers = _enabled_providers(provider_ids)
    if not providers:
        return []
    results = asyncio.run(_probe_many([provider_config(p) for p in providers]))
    for provider, result in zip(providers, results, strict=True):
        save_result(result)
        feed_circuits(result, [m.name for m in provider.enabled_models])  # type: ignore[attr-defined]
        if result.status == Status.DOWN:
            logger.warning("provider probe failed", extra={"provider": result.provider, "error": result.error})
    return results
