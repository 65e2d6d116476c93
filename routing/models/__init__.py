"""Routing models, one module per sub-domain."""

from routing.models.aliases import ModelAlias
from routing.models.config import ConfigSection
from routing.models.outcomes import RoutingOutcome
from routing.models.policy import GuardrailPolicy, RoutingPolicy
from routing.models.skills import Skill
from routing.models.tiers import Balancing, Tier, TierModel

__all__ = [
    "Balancing",
    "ConfigSection",
    "GuardrailPolicy",
    "ModelAlias",
    "RoutingOutcome",
    "RoutingPolicy",
    "Skill",
    "Tier",
    "TierModel",
]
