"""What the gateway does to one chat request besides routing it: token reduction, cascade, answer checks.

``plan_chat`` reads the tenant's policies from the snapshot (no query) once
the route is known. The plan then gives each upstream attempt its body
(``body_for``): the messages reduced for that deployment's context window,
and the Anthropic prompt-caching flag only for Anthropic deployments (the
OpenAI pass-through forwards bodies verbatim, so the flag must never reach
it). Reductions are computed once per distinct budget and reused by retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from gateway_platform.config.snapshot import KeyInfo, Snapshot
from providers.adapters import passthrough_adapter_for
from providers.adapters.anthropic import PROMPT_CACHING_KEY
from providers.adapters.base import Deployment, NativeRequest, PassthroughAdapter
from providers.adapters.tokens import PromptFacts, estimate_prompt_tokens
from routing import guardrail, sessions
from routing.cascade import CascadePlan, plan_cascade
from routing.policies import guardrail_policy, routing_policy
from routing.reduction import Reduced, Switches, context_budget, reduce_messages
from routing.reduction.caps import Caps
from routing.reduction.instructions import EditRequest
from routing.resolver import Route
from routing.tier_views import tiers_for
from serving.exchange import Exchange
from serving.requests import ChatRequest, Passthrough

ANTHROPIC_KIND = "anthropic"
OPENAI_KIND = "openai"
REDUCTION_FEATURES = frozenset(
    {"strip_ide_boilerplate", "dedupe_files", "trim_context", "diff_first", "code_mode", "message_caps"}
)


@dataclass(slots=True)
class ChatPlan:
    """One chat request's reductions, cascade and answer checks (``plan_chat`` builds it)."""

    exchange: Exchange
    body: dict[str, Any]
    switches: Switches = field(default_factory=Switches)
    prompt_caching: bool = False
    guard_mode: str = guardrail.ALLOW
    guard_commands: tuple[str, ...] = ()
    cascade: CascadePlan | None = None
    message_caps: Caps = field(default_factory=Caps.off)
    edit: EditRequest | None = None
    last_body: dict[str, Any] | None = None
    facts: PromptFacts | None = None  # of ``body``'s messages (``serving.requests.ChatRequest.facts``)
    native: Passthrough | None = None
    _reduced: dict[int | None, Reduced] = field(default_factory=dict)

    @property
    def code_mode(self) -> bool:
        return self.switches.code_mode

    @property
    def guarded(self) -> bool:
        """Whether answers are checked for destructive commands."""
        return self.guard_mode in (guardrail.ANNOTATE, guardrail.BLOCK) and bool(self.guard_commands)

    @property
    def holds(self) -> bool:
        """Whether streams must be held until checked (block mode: nothing may slip through)."""
        return self.guard_mode == guardrail.BLOCK and bool(self.guard_commands)

    def body_for(self, deployment: Deployment) -> dict[str, Any]:
        """The body to send to ``deployment``; records the tokens its reductions saved on the exchange."""
        body = self.body
        messages = body.get("messages")
        rewrites = self.switches.rewrites or self.switches.trim_context or self.message_caps.active
        if isinstance(messages, list) and rewrites:
            budget = context_budget(deployment, body) if self.switches.trim_context else None
            reduced = self._reduced.get(budget)
            if reduced is None:
                if self._nothing_to_reduce(budget):
                    reduced = Reduced(messages)
                else:
                    reduced = reduce_messages(
                        messages, self.switches, budget_tokens=budget, message_caps=self.message_caps
                    )
                self._reduced[budget] = reduced
            if reduced.messages != messages:
                body = {**body, "messages": reduced.messages}
            self.edit = reduced.edit
            kept = {k: v for k, v in self.exchange.tokens_saved.items() if k not in REDUCTION_FEATURES}
            self.exchange.tokens_saved = {**kept, **reduced.tokens_saved}
        if self.prompt_caching and deployment.provider.kind == ANTHROPIC_KIND:
            body = {**body, PROMPT_CACHING_KEY: True}
        session, key = self.exchange.session, self.exchange.key
        if (
            session
            and key is not None
            and deployment.provider.kind == OPENAI_KIND
            and "prompt_cache_key" not in body
            and sessions.sends_prompt_cache_key(deployment.provider.base_url)
        ):
            body = {**body, "prompt_cache_key": sessions.prompt_cache_key(key.tenant_id, session)}
        self.last_body = body
        return body

    def _nothing_to_reduce(self, budget: int | None) -> bool:
        """Whether the reductions provably leave the messages as they are (so they need not run).

        Nothing rewrites regardless of size, no text is longer than the smallest active message
        cap, and the messages fit the context budget (trimming starts only above it).
        """
        facts = self.facts
        if facts is None or self.switches.rewrites:
            return False
        caps = [cap for cap in (self.message_caps.system, self.message_caps.user, self.message_caps.tool) if cap]
        if caps and facts.longest_text > min(caps):
            return False
        return budget is None or facts.message_tokens <= budget

    def native_for(self, deployment: Deployment) -> tuple[PassthroughAdapter, NativeRequest] | None:
        """The adapter and request for sending the client's own body to ``deployment`` unchanged.

        None (translate instead) when the upstream does not speak the client's API, or when the
        gateway changes the request or the answer: a skill's prompt, a summary, token reduction
        (all rewrite the translated messages), code mode or the guardrail (they rewrite answers).
        """
        native = self.native
        if native is None or self.code_mode or self.guarded:
            return None
        adapter = passthrough_adapter_for(native.request, deployment)
        if adapter is None or self.body_for(deployment).get("messages") is not native.parsed_messages:
            return None
        return adapter, native.request

    def estimate_prompt(self) -> int:
        """Estimated prompt tokens of the body last sent (for upstreams that report no usage)."""
        return estimate_prompt_tokens(self.last_body if self.last_body is not None else self.body)


def configured_caps() -> Caps:
    """The per-message caps of the settings (``SYSTEM_MAX_CHARS``, ``USER_MSG_MAX_CHARS``, …)."""
    config = settings.GATEWAY
    return Caps(config["SYSTEM_MAX_CHARS"], config["USER_MSG_MAX_CHARS"], config["TOOL_RESULT_MAX_CHARS"])


def plan_chat(exchange: Exchange, snapshot: Snapshot, key: KeyInfo, request: ChatRequest, route: Route) -> ChatPlan:
    """The plan for a routed chat request under its tenant's routing and guardrail policies."""
    policy = routing_policy(snapshot, key.tenant_id)
    guard = guardrail_policy(snapshot, key.tenant_id)
    score = exchange.route_reason.get("score")
    messages = request.body.get("messages")
    cascade = plan_cascade(
        tiers_for(snapshot, key.tenant_id).tiers,
        key,
        route,
        enabled=policy.cascade_enabled,
        threshold=policy.cascade_quality_threshold,
        messages=messages if isinstance(messages, list) else [],
        complexity=score if isinstance(score, float) else None,
    )
    return ChatPlan(
        exchange=exchange,
        body=request.body,
        switches=Switches.from_policy(policy),
        message_caps=configured_caps(),
        prompt_caching=policy.anthropic_prompt_caching,
        guard_mode=guard.mode,
        guard_commands=guard.commands,
        cascade=cascade,
        facts=request.facts(),
        native=request.native,
    )
