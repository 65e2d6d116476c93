"""The config file's ``security:`` and ``mcp:`` sections (seed 000) applied to the global policies.

``security`` becomes the global ``GuardrailPolicy``: ``require_confirmation_for``
lists the commands, the mode is ``annotate`` (seed 000 asks for human
confirmation, which a gateway cannot give: it marks the answer instead);
an optional ``mode`` (``allow`` | ``annotate`` | ``block``) overrides that.
``sandbox`` is accepted and has no effect: the agent runs commands, not the
gateway. ``mcp`` sets the global ``RoutingPolicy.code_mode`` (code mode is
both the instruction on the way in and the normalisation on the way out, so
``code_mode`` and ``normalize_output`` drive one switch; ``code_mode`` wins
when both are given). In ``create_missing`` mode (``seed_defaults``) an
existing global policy is left as it is.
"""

from __future__ import annotations

from typing import Any

from routing.config_file.apply import ImportMode, register_section
from routing.config_file.yaml_lines import KeyPath

Problems = list[tuple[KeyPath, str]]
GUARDRAIL_MODES = ("allow", "annotate", "block")


def _unknown(data: dict[str, Any], known: tuple[str, ...]) -> Problems:
    return [((key,), f"unknown key; expected one of {', '.join(known)}") for key in data if key not in known]


def apply_security_section(data: Any, mode: ImportMode) -> Problems:
    """Write ``security:`` into the global guardrail policy; the problems found, by key path."""
    from routing.models import GuardrailPolicy

    if not isinstance(data, dict):
        return [((), "expected a mapping")]
    problems = _unknown(data, ("require_confirmation_for", "mode", "sandbox"))
    commands = data.get("require_confirmation_for", [])
    if not isinstance(commands, list) or not all(isinstance(c, str) and c.strip() for c in commands):
        problems.append((("require_confirmation_for",), "expected a list of command names"))
    guard_mode = data.get("mode", "annotate")
    if guard_mode not in GUARDRAIL_MODES:
        problems.append((("mode",), f"expected one of {', '.join(GUARDRAIL_MODES)}"))
    if not isinstance(data.get("sandbox", False), bool):
        problems.append((("sandbox",), "expected true or false"))
    if problems:
        return problems
    policy = GuardrailPolicy.objects.filter(tenant=None).first()
    if policy is not None and mode == "create_missing":
        return []
    policy = policy or GuardrailPolicy(tenant=None)
    values = {"mode": guard_mode, "commands": [c.strip() for c in commands]}
    _save_changed(policy, values)
    return []


def apply_mcp_section(data: Any, mode: ImportMode) -> Problems:
    """Write ``mcp:`` into the global routing policy's code-mode switch."""
    from routing.models import RoutingPolicy

    if not isinstance(data, dict):
        return [((), "expected a mapping")]
    problems = _unknown(data, ("code_mode", "normalize_output"))
    for key in ("code_mode", "normalize_output"):
        if key in data and not isinstance(data[key], bool):
            problems.append(((key,), "expected true or false"))
    if problems or not data:
        return problems
    policy = RoutingPolicy.objects.filter(tenant=None).first()
    if policy is not None and mode == "create_missing":
        return []
    policy = policy or RoutingPolicy(tenant=None)
    _save_changed(policy, {"code_mode": data.get("code_mode", data.get("normalize_output", False))})
    return []


def _save_changed(row: Any, values: dict[str, Any]) -> None:
    """Save ``row`` with ``values`` if it is new or any of them differs (re-imports stay no-ops)."""
    if row.pk is not None and all(getattr(row, name) == value for name, value in values.items()):
        return
    for name, value in values.items():
        setattr(row, name, value)
    row.save()


def register() -> None:
    register_section("security", apply_security_section)
    register_section("mcp", apply_mcp_section)
