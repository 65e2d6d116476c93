"""The admin's "Try routing" page: what the gateway would decide for a request, without calling upstream.

Paste a prompt (or a whole chat request as JSON), pick the API key it would
come with, and see the tier, the models in order, the complexity score and
its top features, the skill, the cascade, the guardrail, token reduction and
the cache decision. It runs the gateway's own pure decision functions
(``route_plan.plan_route``, ``chat_plan.plan_chat``, ``caching.policy.decide``)
on a freshly loaded configuration snapshot; nothing is sent to a provider and
nothing is written.

Mounted at ``/admin/routing/try/`` by :func:`register`; superusers try any
key, tenant admins only their tenants' keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from gateway_platform.errors import GatewayError
from tenants.admin_scoping import is_platform_admin, request_tenants
from tenants.models import ApiKey

SMART_CHOICES = [("", "Default (header absent)"), ("1", "On (X-Gateway-Smart-Routing: 1)"), ("0", "Off (… : 0)")]
CACHE_CHOICES = [("", "Default"), ("no-cache", "no-cache (store only)"), ("no-store", "no-store (bypass)")]


class TryRoutingForm(forms.Form):
    api_key = forms.ModelChoiceField(queryset=ApiKey.objects.none(), label="API key")
    model = forms.CharField(initial="auto", help_text="auto, a tier, a model, or provider:model.")
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "cols": 100}), required=False)
    request_json = forms.CharField(
        label="…or a chat request (JSON)",
        widget=forms.Textarea(attrs={"rows": 8, "cols": 100}),
        required=False,
        help_text="A /v1/chat/completions body; its own model wins over the field above.",
    )
    skill = forms.CharField(required=False, help_text="As X-Gateway-Skill.")
    smart_routing = forms.ChoiceField(choices=SMART_CHOICES, required=False)
    cache = forms.ChoiceField(choices=CACHE_CHOICES, required=False, label="X-Gateway-Cache")

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keys = ApiKey.objects.select_related("team__tenant").order_by("team__tenant__slug", "team__slug", "name")
        if not is_platform_admin(request):
            keys = keys.filter(team__tenant__in=request_tenants(request))
        field = self.fields["api_key"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = keys
        field.label_from_instance = lambda k: f"{k.team} — {k.name} ({k.prefix}…)"  # type: ignore[assignment,method-assign]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        raw, prompt = data.get("request_json", "").strip(), data.get("prompt", "").strip()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise forms.ValidationError(f"The request is not valid JSON: {exc}") from exc
            if not isinstance(body, dict):
                raise forms.ValidationError("The request must be a JSON object.")
            body.setdefault("model", data.get("model") or "auto")
        elif prompt:
            body = {"model": data.get("model") or "auto", "messages": [{"role": "user", "content": prompt}]}
        else:
            raise forms.ValidationError("Paste a prompt or a chat request.")
        data["body"] = body
        return data

    def headers(self) -> dict[bytes, bytes]:
        """The gateway headers the simulated request carries."""
        values = {
            b"x-gateway-skill": self.cleaned_data.get("skill", ""),
            b"x-gateway-smart-routing": self.cleaned_data.get("smart_routing", ""),
            b"x-gateway-cache": self.cleaned_data.get("cache", ""),
        }
        return {name: value.strip().encode() for name, value in values.items() if value and value.strip()}


@dataclass
class Simulation:
    """Everything the gateway would decide; ``error`` is the answer it would give instead, if any."""

    requested: str = ""
    tier: str | None = None
    deployments: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] = field(default_factory=dict)
    skill: str = ""
    cascade: dict[str, Any] | None = None
    guardrail: str = ""
    tokens_saved: dict[str, int] = field(default_factory=dict)
    cache: dict[str, str] = field(default_factory=dict)
    balancing: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    notes: list[str] = field(default_factory=list)


def simulate(api_key: ApiKey, body: dict[str, Any], headers: dict[bytes, bytes]) -> Simulation:
    """Run the request-planning steps of ``/v1/chat/completions`` for ``api_key`` (no upstream, no writes)."""
    from gateway_platform.config.snapshot import load_key, load_snapshot
    from providers import circuit
    from serving.chat_plan import plan_chat
    from serving.exchange import Exchange
    from serving.requests import parse_chat_request
    from serving.route_plan import plan_route

    result = Simulation(requested=str(body.get("model", "")))
    snapshot = load_snapshot(version=-1)  # fresh from the database: what every process sees after the next bump
    key = load_key(api_key.key_hash)
    if key is None:  # deleted meanwhile
        result.error = "401: the key no longer exists."
        return result
    if key.revoked or not key.tenant_active:
        result.notes.append("This key is revoked or its tenant suspended: the gateway would answer 403.")
    exchange = Exchange(request_id="try-routing", endpoint="chat.completions", request_headers=headers)
    try:
        request = parse_chat_request(json.dumps(body).encode())
        route = plan_route(exchange, snapshot, key, request)
        plan = plan_chat(exchange, snapshot, key, request, route)
    except GatewayError as exc:
        result.error = f"{exc.status}: {exc.message}"
        return result
    route, result.balancing = _balance_preview(route)
    result.tier, result.skill = route.tier, exchange.skill
    result.decision = exchange.route_reason
    result.deployments = [
        {
            "name": d.name,
            "provider": d.provider.name,
            "upstream_model": d.upstream_model,
            "input": d.input_cost_per_million,
            "output": d.output_cost_per_million,
            "circuit": circuit.state_of(d.name),
        }
        for d in route.deployments
    ]
    if plan.cascade is not None:
        result.cascade = {
            "cheap_tier": plan.cascade.cheap_tier,
            "requested_tier": plan.cascade.requested_tier,
            "threshold": plan.cascade.threshold,
        }
    result.guardrail = plan.guard_mode
    if route.deployments:
        plan.body_for(route.deployments[0])
        result.tokens_saved = dict(exchange.tokens_saved)
    result.cache = _cache_decision(snapshot, key.tenant_id, route, request.body, headers)
    return result


def _balance_preview(route: Any) -> tuple[Any, list[dict[str, Any]]]:
    """The route as balancing would order it now, and each shared position's members with their load.

    ``weighted`` was drawn by the resolver; ``least-busy`` and ``latency`` are ordered here from the
    load every process reports in Redis (read only: nothing is counted in flight).
    """
    from providers import load
    from routing import balancing

    balance = route.balance
    if balance is None:
        return route, []
    groups = balancing.present_groups(route.deployments, balance)
    names = [name for group in groups for name, _ in group]
    seen = load.snapshot_now(names) if balance.strategy != balancing.WEIGHTED else {}
    if not route.picks and balance.strategy == balancing.LEAST_BUSY:
        route = balancing.least_busy(route, groups, {n: (seen.get(n) or (0, None))[0] or 0 for n in names}, None)
    elif not route.picks and balance.strategy == balancing.LATENCY:
        route = balancing.lowest_latency(route, groups, {n: (seen.get(n) or (None, None))[1] for n in names})
    chosen = {pick.chosen for pick in route.picks}
    positions = []
    for group, pick in zip(groups, route.picks, strict=False):
        total = sum(weight for _, weight in group)
        members = [
            {
                "name": name,
                "weight": weight,
                "share": f"{100 * weight / total:.0f}%",
                "in_flight": (seen.get(name) or (None, None))[0],
                "ttft_ms": (seen.get(name) or (None, None))[1],
                "chosen": name in chosen,
            }
            for name, weight in group
        ]
        positions.append({"strategy": balance.strategy, "why": pick.why, "members": members})
    return route, positions


def _cache_decision(
    snapshot: Any, tenant_id: int, route: Any, body: dict[str, Any], headers: dict[bytes, bytes]
) -> dict[str, str]:
    """The semantic cache's decision (whether it would look up and store), not whether it would hit."""
    try:
        from caching.policy import cache_policy, client_directive, decide
        from serving.cache_step import route_name
    except ImportError:  # the cache app is optional for this page
        return {"mode": "unavailable", "reason": "the caching app is not installed"}
    policy = cache_policy(snapshot, tenant_id)
    decision = decide(
        policy,
        endpoint="chat.completions",
        route_name=route_name(route),
        body=body,
        directive=client_directive(headers),
    )
    labels = {"full": "look up; store on a miss", "store_only": "store only", "bypass": "bypass"}
    return {"mode": labels.get(decision.mode.value, decision.mode.value), "reason": decision.reason}


def try_routing_view(request: HttpRequest) -> HttpResponse:
    """``/admin/routing/try/``: the form, and the simulation of what it describes."""
    if not (is_platform_admin(request) or request_tenants(request).exists()):
        raise PermissionDenied
    form = TryRoutingForm(request.POST or None, request=request)
    result = None
    if request.method == "POST" and form.is_valid():
        result = simulate(form.cleaned_data["api_key"], form.cleaned_data["body"], form.headers())
    context = {
        **admin.site.each_context(request),
        "title": "Try routing",
        "form": form,
        "result": result,
        "features": (result.decision.get("features") or [])[:8] if result else [],
    }
    return TemplateResponse(request, "admin/serving/try_routing.html", context)


def register(site: admin.AdminSite) -> None:
    """Mount the page under the admin and list it with the Routing models (no AdminSite subclass needed)."""
    get_urls, get_app_list = site.get_urls, site.get_app_list

    def urls() -> list[Any]:
        return [path("routing/try/", site.admin_view(try_routing_view), name="routing_try"), *get_urls()]

    def app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = get_app_list(request, app_label)
        if app_label not in (None, "routing") or not (is_platform_admin(request) or request_tenants(request).exists()):
            return apps
        url = reverse("admin:routing_try", current_app=site.name)
        entry = {"name": "Try routing", "object_name": "TryRouting", "admin_url": url, "add_url": None}
        routing = next((app for app in apps if app["app_label"] == "routing"), None)
        if routing is None:  # the user may open no routing model, but may try routing
            routing = {
                "name": "Routing",
                "app_label": "routing",
                "app_url": url,
                "has_module_perms": True,
                "models": [],
            }
            apps.append(routing)
        routing["models"].append({**entry, "view_only": True, "perms": {"view": True}})
        return apps

    site.get_urls = urls  # type: ignore[method-assign]
    site.get_app_list = app_list  # type: ignore[method-assign]


register(admin.site)
