"""Build the labelled routing workload (``bench/routing/workload.jsonl``) from the templates.

Each template is instantiated a few times with different slot values and one
of five request shapes seen from IDEs and agents: a bare question, an IDE
request (long system prompt), an agent start (system prompt and tool
definitions), a multi-turn conversation (an earlier exchange about a file),
and an agent loop in progress (tool calls and their results; the last
message is a tool result). Short follow-ups ("yes, go ahead") are added after
some tasks and keep the task's label. Generation is deterministic (fixed
seed); ``python -m bench.routing --regenerate`` rewrites the file.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.routing import fixtures
from bench.routing.templates import CODE, COMPLEX, FOLLOW_UPS, SIMPLE, TEMPLATES, Template

WORKLOAD_PATH = Path(__file__).resolve().parent / "workload.jsonl"
SEED = 20250302
SHAPES = (("single", 35), ("ide", 25), ("tools", 15), ("multi", 15), ("agent", 10))
FOLLOW_UP_SHARE = 0.12
HOLDOUT_EVERY = 3  # one template in three is held out
INSTANCES = {SIMPLE: 4, CODE: 3, COMPLEX: 2}  # per template: roughly the mix of IDE and agent traffic

SLOTS: dict[str, tuple[str, ...]] = {
    "dir": ("src/", "app/services", "web/src/components", "internal/", "scripts/", "tests/integration", "migrations/"),
    "file": (
        "src/billing/invoices.py",
        "app/services/payment_service.py",
        "api/handlers/orders.go",
        "web/src/components/CartSummary.tsx",
        "lib/utils/dates.ts",
        "backend/accounts/views.py",
        "services/notifications/worker.py",
    ),
    "func": ("get_user_by_email", "calculate_invoice_total", "parse_duration", "send_welcome_email", "apply_discount"),
    "const": ("PAYMENT_TIMEOUT", "MAX_RETRIES", "DEFAULT_PAGE_SIZE", "FEATURE_NEW_CHECKOUT", "S3_BUCKET"),
    "module": ("requests", "billing.tax", "legacy_auth", "utils.dates", "boto3"),
    "flag": ("--no-deps", "-x", "--frozen", "--prune", "-u"),
    "tool": ("pip", "pytest", "uv", "git fetch", "npm ci"),
    "regex": (r"^\d{3}-\d{4}$", r"(?i)^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$", r"\bv?\d+\.\d+\.\d+\b"),
    "service": ("Redis", "PostgreSQL", "RabbitMQ", "Elasticsearch"),
    "var": ("tmp", "data", "res", "x", "cfg"),
    "var2": ("buffer", "payload", "response", "retry_count", "settings"),
    "version": ("2.3.1", "1.8.0", "4.0.0rc1"),
    "pkg": ("httpx", "pydantic", "structlog", "tenacity"),
    "test_file": ("tests/test_orders.py", "tests/billing/test_invoices.py", "web/src/__tests__/cart.test.tsx"),
    "branch": ("coupon-limits", "csv-export", "faster-search"),
    "errmsg": (
        "ECONNREFUSED 127.0.0.1:5432",
        "fatal: refusing to merge unrelated histories",
        "ERR_OSSL_EVP_UNSUPPORTED",
        "permission denied (publickey)",
    ),
    "emails": ("contact ana@acme.io or bob.smith@example.org, cc ops@acme.io", "from: jo@x.dev; to: li@y.com"),
    "script_task": (
        "renames all .jpeg files in a folder to .jpg and skips ones that already exist",
        "downloads yesterday's CSV export from S3 and loads it into Postgres",
        "checks every URL in our sitemap and reports the ones that return 4xx or 5xx",
        "finds duplicate photos in a directory tree by content hash",
        "rotates our API keys in Vault and updates the Kubernetes secrets",
    ),
    "bash_task": (
        "back up the postgres database every night and keep the last 7 dumps",
        "tail the nginx logs and alert on more than 50 5xx responses a minute",
        "clean up docker images older than two weeks on the build agents",
    ),
    "lang": ("Python", "Go", "TypeScript", "Rust"),
    "framework": ("Django", "FastAPI", "Next.js", "Spring Boot"),
    "feature": ("a soft-delete for invoices", "per-customer rate limits", "an audit log of admin actions"),
    "endpoint": ("/orders", "/api/v2/invoices", "/users/search"),
    "rule": ("emails must be unique and lowercase", "passwords need 12+ characters", "phone numbers in E.164"),
    "cls": ("OrderService", "InvoiceRepository", "NotificationDispatcher", "ReportBuilder"),
    "error": ("KeyError: 'user_id'", "TypeError: 'NoneType' object is not iterable", "ImportError: cannot import name"),
    "bug": (
        "pagination skips the last page when the total is a multiple of the page size",
        "the date picker shows yesterday for users in UTC-8",
        "uploading a file with a space in its name returns 500",
    ),
    "d1": ("billing", "orders", "catalog"),
    "d2": ("accounts", "inventory", "shipping"),
    "d3": ("notifications", "reporting", "search"),
    "db": ("Postgres", "MySQL"),
    "product": ("our analytics platform", "the booking system", "our LLM gateway"),
    "use_case": ("order events", "email notifications", "audit logging"),
    "what": ("product pages", "user profiles", "account balances"),
    "n": ("14", "40", "120"),
    "old": ("Python 3.8", "EC2 VMs", "a shared MySQL"),
    "new": ("Python 3.12", "Kubernetes", "per-service databases"),
    "component": ("payment processor", "job scheduler", "search indexer"),
    "region": ("eu-west-1", "ap-southeast-2"),
    "problem": (
        "finding overlapping booking intervals among a million reservations",
        "deduplicating near-identical addresses",
        "scheduling jobs with dependencies and deadlines",
    ),
    "sso": (
        "OIDC with our IdP, tokens kept in localStorage, refresh via a hidden iframe",
        "SAML from three customer IdPs, accounts linked by email on first login",
    ),
}
PRIOR_QUESTIONS = ("show me {file}", "open {file}", "what's in {file}?")


def split_of(template_id: str) -> str:
    """``dev`` or ``holdout``, stable per template (instances of one template never straddle the split)."""
    return "holdout" if zlib.crc32(template_id.encode()) % HOLDOUT_EVERY == 0 else "dev"


def _slots(rng: random.Random) -> dict[str, str]:
    values = {name: rng.choice(options) for name, options in SLOTS.items()}
    values["file2"] = rng.choice([f for f in SLOTS["file"] if f != values["file"]])
    name = "".join(part.title() for part in values["func"].split("_"))
    values["py_code"] = fixtures.PY_SERVICE.format(func=values["func"])
    values["short_code"] = "\n".join(values["py_code"].splitlines()[19:30])
    values["ts_code"] = fixtures.TS_COMPONENT.format(name=name + "List")
    values["go_code"] = fixtures.GO_HANDLER.format(name="List" + name)
    values["locking_code"] = fixtures.LOCKING_CODE.format()
    values["traceback"] = fixtures.TRACEBACK.format(file=values["file"], func=values["func"])
    values["pytest_out"] = fixtures.PYTEST_OUTPUT.format(func=values["func"])
    values["diff"] = fixtures.DIFF.format(file=values["file"], func=values["func"])
    values["log"] = fixtures.LOG_LINES
    values["jobs_json"] = fixtures.JOBS_JSON
    return values


def _answer(label: str, slots: dict[str, str]) -> str:
    """A plausible earlier assistant answer for a task of this label."""
    if label == SIMPLE:
        return f"Done — see `{slots['file']}`. Anything else?"
    if label == COMPLEX:
        return (
            "Here is how I would approach it. First, make the boundaries explicit: each part owns its data and "
            "publishes events for the others. Second, keep the cross-cutting reports on a read model fed by those "
            "events. Third, migrate one flow at a time behind a flag, measuring error rates and latency before and "
            "after each step. The main risks are dual writes during the transition and reports that silently go "
            "stale; both need monitoring from day one."
        )
    return f"Here's the change:\n```python\n{slots['py_code']}\n```\nIt keeps the public interface unchanged."


def _tool_call(call_id: str, name: str, arguments: dict[str, str]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        ],
    }


def _agent_loop(rng: random.Random, slots: dict[str, str]) -> list[dict[str, Any]]:
    """Tool calls the agent made so far and their results (the request is the next step)."""
    steps = [
        ("list_dir", {"path": slots["dir"]}, fixtures.LS_OUTPUT),
        ("grep_search", {"query": slots["func"]}, fixtures.GREP_OUTPUT.format(file=slots["file"], func=slots["func"])),
        ("read_file", {"path": slots["file"]}, slots["py_code"]),
        ("run_terminal_cmd", {"command": f"pytest {slots['test_file']} -q"}, slots["pytest_out"]),
    ]
    messages: list[dict[str, Any]] = []
    for index, (name, arguments, output) in enumerate(rng.sample(steps, rng.randint(1, 3))):
        call_id = f"call_{index}"
        messages += [_tool_call(call_id, name, arguments), {"role": "tool", "tool_call_id": call_id, "content": output}]
    return messages


def _body(shape: str, task: str, rng: random.Random, slots: dict[str, str]) -> dict[str, Any]:
    system = {"role": "system", "content": rng.choice(fixtures.SYSTEM_PROMPTS)}
    user = {"role": "user", "content": task}
    if shape == "single":
        return {"messages": [user]}
    if shape == "ide":
        return {"messages": [system, user]}
    if shape == "tools":
        return {"messages": [system, user], "tools": fixtures.AGENT_TOOLS}
    if shape == "multi":
        prior = rng.choice(PRIOR_QUESTIONS).format(**slots)
        earlier = [{"role": "user", "content": prior}, {"role": "assistant", "content": slots["py_code"]}]
        return {"messages": [system, *earlier, user]}
    return {"messages": [system, user, *_agent_loop(rng, slots)], "tools": fixtures.AGENT_TOOLS}


def _record(template: Template, number: int, shape: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{template.id}#{number}",
        "template": template.id,
        "kind": template.kind,
        "label": template.label,
        "shape": shape,
        "split": split_of(template.id),
        "body": {"model": "auto", **body},
    }


def generate() -> Iterator[dict[str, Any]]:
    """Every workload record, deterministically."""
    rng = random.Random(SEED)
    shapes = [shape for shape, _ in SHAPES]
    weights = [weight for _, weight in SHAPES]
    for template in TEMPLATES:
        number = 0
        for _ in range(INSTANCES[template.label]):
            slots = _slots(rng)
            task = template.text.format(**slots)
            shape = rng.choices(shapes, weights)[0]
            body = _body(shape, task, rng, slots)
            number += 1
            yield _record(template, number, shape, body)
            if rng.random() < FOLLOW_UP_SHARE:
                follow_up = rng.choice(FOLLOW_UPS).format(**slots)
                messages = [*body["messages"], {"role": "assistant", "content": _answer(template.label, slots)}]
                messages.append({"role": "user", "content": follow_up})
                number += 1
                yield _record(template, number, "follow_up", {**body, "messages": messages})


def write(path: Path = WORKLOAD_PATH) -> int:
    """Regenerate the JSONL file; returns the number of records."""
    records = list(generate())
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return len(records)


def load(path: Path = WORKLOAD_PATH) -> list[dict[str, Any]]:
    """The workload records."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
