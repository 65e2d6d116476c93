"""Token reduction (seed 002): pure transforms over an OpenAI ``messages`` list.

One module per transform, each ``(messages) -> (new messages, tokens saved)``:
``boilerplate`` (repeated IDE instruction blocks), ``dedupe`` (files pasted
again), ``trim`` (oldest turns beyond the context window), ``instructions``
(code mode and diff-first), ``output`` (code-mode answer normalisation);
``pipeline`` runs them in order per the tenant's switches.
"""

from routing.reduction.pipeline import Reduced, Switches, context_budget, reduce_messages

__all__ = ["Reduced", "Switches", "context_budget", "reduce_messages"]
