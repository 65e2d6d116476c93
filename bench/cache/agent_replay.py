"""(b) A replayed agent session: hit rate, wrong hits and USD saved.

The session (deterministic) mixes what coding agents send through a gateway:

1. **repeated system context** — six developers start sessions with the same
   repository context and ask the team's common questions, each in their own
   words;
2. **repeated tool calls** — an agent loop restarted four times (crash, retry,
   CI re-run) replays the same steps with the same conversation so far;
3. **batch file processing** — one instruction over 40 files; the batch runs
   again after a failure, a second agent runs it with its own wording, and a
   third pass covers 20 new files, whose answers must not come from the cache.

Every request goes through the gateway's own cache logic: ``cache_keys`` for
the namespace / context / exact key, the local embedder, the semantic
threshold and the parameter guard; the store is an in-memory stand-in for the
two layers (exact dict, top-4 cosine within tenant + namespace + context).
Each request carries the identity of its true answer, so a hit serving
another answer is counted as wrong. Prices: sonnet-4.5 (3 / 15 USD per
million input / output tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from caching.embedders.local import MiniLM
from caching.guard import same_parameters
from caching.keys import cache_keys
from providers.adapters.tokens import estimate_tokens

INPUT_PER_MILLION, OUTPUT_PER_MILLION = Decimal(3), Decimal(15)
THRESHOLD = 0.85
CONTEXT = (
    "You are a coding agent working in the acme/billing repository (Django 5, Celery, PostgreSQL). "
    "Follow the style guide: type hints, small modules, tests for every change. " * 20
)
QUESTIONS = [
    ["How do I run the test suite?", "What's the command to run the test suite?", "How can I run the tests?"],
    [
        "Where is the invoice total computed?",
        "Which module computes the invoice total?",
        "Where does the code compute the invoice total?",
    ],
    [
        "How do I start the development server?",
        "What command starts the development server?",
        "How can I start the dev server?",
    ],
    [
        "Explain the Celery task layout",
        "Describe how the Celery tasks are organised",
        "Explain how the Celery tasks are laid out",
    ],
    [
        "How are database migrations created?",
        "How do I create a database migration?",
        "What's the way to create database migrations?",
    ],
    [
        "Where are the environment variables documented?",
        "Which file documents the environment variables?",
        "Where can I find the documentation of the environment variables?",
    ],
    [
        "How does authentication work in the API?",
        "Explain how the API authenticates requests",
        "How is authentication handled in the API?",
    ],
    [
        "What is the branching strategy?",
        "Which branching strategy does the team use?",
        "Explain our branching strategy",
    ],
    [
        "How do I add a new payment provider?",
        "What are the steps to add a new payment provider?",
        "How can I add another payment provider?",
    ],
    ["Where are the logs written?", "Where do the logs go?", "Which location are the logs written to?"],
]
TOOL_STEPS = [
    "List the files in src/billing",
    "Read src/billing/models.py",
    "Run the tests in tests/test_invoices.py",
    "Show the failing assertion in tests/test_invoices.py",
    "Open src/billing/totals.py around compute_total",
    "Propose a fix for compute_total in src/billing/totals.py",
    "Apply the fix to src/billing/totals.py",
    "Run the tests in tests/test_invoices.py again",
    "Summarise the change for the commit message",
    "Write the commit message for the compute_total fix",
    "List the other callers of compute_total",
    "Check src/billing/api.py for the same bug",
]
BATCH_WORDING = [
    "Summarise data/batch/file_{i:03}.csv and list any anomalies in it",
    "Give a summary of data/batch/file_{i:03}.csv and point out any anomalies in it",
]


@dataclass(frozen=True, slots=True)
class Request:
    phase: str
    messages: list[dict[str, str]]
    answer_id: str  # requests with the same answer_id may share an answer
    completion_tokens: int


@dataclass(slots=True)
class Stats:
    requests: int = 0
    exact: int = 0
    semantic: int = 0
    wrong: int = 0
    spent: Decimal = Decimal(0)
    saved: Decimal = Decimal(0)
    per_phase: dict[str, list[int]] = field(default_factory=dict)


def session() -> list[Request]:
    system = {"role": "system", "content": CONTEXT}
    requests: list[Request] = []
    for developer in range(6):
        for number, variants in enumerate(QUESTIONS):
            text = variants[(developer + number) % len(variants)]
            requests.append(Request("context", [system, {"role": "user", "content": text}], f"q{number}", 250))
    for _restart in range(4):
        conversation: list[dict[str, str]] = [system]
        for number, step in enumerate(TOOL_STEPS):
            conversation = [*conversation, {"role": "user", "content": step}]
            requests.append(Request("tools", list(conversation), f"step{number}", 180))
            conversation = [*conversation, {"role": "assistant", "content": f"(result of step {number})"}]
    for run, wording, files in ((0, 0, range(40)), (1, 0, range(40)), (2, 1, range(40)), (3, 0, range(40, 60))):
        for i in files:
            text = BATCH_WORDING[wording].format(i=i)
            requests.append(Request(f"batch{run}", [system, {"role": "user", "content": text}], f"file{i}", 400))
    return requests


def cost(request: Request) -> Decimal:
    prompt = sum(estimate_tokens(m["content"]) + 4 for m in request.messages)
    return (prompt * INPUT_PER_MILLION + request.completion_tokens * OUTPUT_PER_MILLION) / 1_000_000


def run(model: MiniLM) -> dict[str, Any]:
    exact: dict[str, str] = {}
    semantic: dict[tuple[str, str], list[tuple[np.ndarray, str, str]]] = {}
    stats = Stats()
    for request in session():
        body = {"model": "code_gen", "messages": request.messages}
        keys = cache_keys(tenant_id=1, route_name="code_gen", skill="", body=body)
        served: str | None = exact.get(keys.exact_key)
        kind = "exact" if served is not None else ""
        vector = np.array(model.embed_sync(keys.prompt_text)) if keys.prompt_text else None
        if served is None and vector is not None:
            scored = [
                (float(np.dot(vector, other)), prompt, answer)
                for other, prompt, answer in semantic.get((keys.namespace, keys.context_hash), [])
            ]
            for similarity, prompt, answer in sorted(scored, reverse=True)[:4]:
                if similarity < THRESHOLD:
                    break
                if same_parameters(prompt, keys.prompt_text):
                    served, kind = answer, "semantic"
                    break
        price = cost(request)
        stats.requests += 1
        phase = stats.per_phase.setdefault(request.phase, [0, 0])
        phase[0] += 1
        if served is None:
            stats.spent += price
            exact[keys.exact_key] = request.answer_id
            if vector is not None:
                semantic.setdefault((keys.namespace, keys.context_hash), []).append(
                    (vector, keys.prompt_text, request.answer_id)
                )
            continue
        phase[1] += 1
        stats.saved += price
        stats.exact += kind == "exact"
        stats.semantic += kind == "semantic"
        stats.wrong += served != request.answer_id
    return {
        "requests": stats.requests,
        "exact_hits": stats.exact,
        "semantic_hits": stats.semantic,
        "wrong_hits": stats.wrong,
        "hit_rate": (stats.exact + stats.semantic) / stats.requests,
        "usd_spent": float(stats.spent),
        "usd_saved": float(stats.saved),
        "per_phase": stats.per_phase,
    }


def report(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['requests']} requests: {result['exact_hits']} exact hits, {result['semantic_hits']} semantic hits, "
        f"**hit rate {result['hit_rate']:.1%}**, {result['wrong_hits']} wrong hits; "
        f"USD spent upstream {result['usd_spent']:.4f}, **saved {result['usd_saved']:.4f}** "
        f"({result['usd_saved'] / (result['usd_saved'] + result['usd_spent']):.1%} of the uncached cost).",
        "",
        "| phase | requests | hits | hit rate |",
        "| --- | --- | --- | --- |",
    ]
    for phase, (requests, hits) in result["per_phase"].items():
        lines.append(f"| {phase} | {requests} | {hits} | {hits / requests:.0%} |")
    return lines
