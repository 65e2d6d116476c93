"""Realistic context for the routing workload: IDE system prompts, agent tools, code and tool output.

The workload's requests are built from these pieces so that they look like what
Cursor, Continue, Aider, Claude Code or an Open Interpreter agent actually sends:
a long instruction-laden system prompt, tool definitions, pasted code, and tool
results (directory listings, grep hits, file contents, test runs).
"""

from __future__ import annotations

from typing import Any

CURSOR_SYSTEM = """You are a powerful agentic AI coding assistant. You operate in the user's IDE.
You are pair programming with a USER to solve their coding task. The task may require creating a new codebase, \
modifying or debugging an existing codebase, or simply answering a question.
Each time the USER sends a message, we may automatically attach some information about their current state, \
such as what files they have open, where their cursor is, recently viewed files, edit history, linter errors.
<communication>
Be conversational but professional. Refer to the USER in the second person. Format your responses in markdown. \
NEVER lie or make things up. Refrain from apologizing all the time when results are unexpected.
</communication>
<making_code_changes>
When making code changes, NEVER output code to the USER unless requested. Use the edit tools instead. \
Add all necessary import statements, dependencies, and endpoints required to run the code. \
If you've introduced linter errors, fix them if clear how to. Do not loop more than 3 times on the same file.
</making_code_changes>
<debugging>
When debugging, only make code changes if you are certain that you can solve the problem. \
Address the root cause instead of the symptoms. Add descriptive logging statements and error messages.
</debugging>
Follow best practices for software architecture, security and performance at all times."""

CONTINUE_SYSTEM = """You are an expert software engineer embedded in the user's editor through Continue.
Always answer concisely. When you write code, use fenced code blocks with the language and the file path, \
for example ```python src/app.py. Prefer minimal diffs. Respect the project's existing style, naming and \
architecture. If the request is ambiguous, ask one clarifying question."""

AGENT_SYSTEM = """You are Open Interpreter, a world-class programmer that can complete any goal by executing code.
First, write a plan. Always recap the plan between each code block. When you execute code, it will be executed \
on the user's machine. The user has given you full and complete permission to execute any code necessary to \
complete the task. You can access the internet. Run any code to achieve the goal, and if at first you don't \
succeed, try again and again. You can install new packages. When a user refers to a filename, they're likely \
referring to an existing file in the directory you're currently executing code in. Write messages to the user \
in Markdown. In general, try to make plans with as few steps as possible."""

SYSTEM_PROMPTS = (CURSOR_SYSTEM, CONTINUE_SYSTEM, AGENT_SYSTEM)


def _tool(name: str, description: str, **properties: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {key: {"type": "string", "description": text} for key, text in properties.items()},
                "required": list(properties),
            },
        },
    }


AGENT_TOOLS = [
    _tool("list_dir", "List the contents of a directory.", path="Directory path relative to the workspace root."),
    _tool("read_file", "Read a file's contents.", path="File path.", start_line="First line.", end_line="Last line."),
    _tool("grep_search", "Fast regex search over the workspace (ripgrep).", query="Regex.", include="Glob."),
    _tool("edit_file", "Apply an edit to a file.", path="File path.", instructions="What to change.", code="Edit."),
    _tool("run_terminal_cmd", "Run a shell command and return its output.", command="Command line."),
    _tool("file_search", "Fuzzy search for file paths.", query="Part of a path."),
]

PY_SERVICE = """import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from billing.models import Invoice, InvoiceLine
from billing.tax import tax_rate_for

logger = logging.getLogger(__name__)


@dataclass
class LineInput:
    sku: str
    quantity: int
    unit_price: Decimal


def {func}(customer, lines, coupon=None):
    total = Decimal(0)
    for line in lines:
        if line.quantity <= 0:
            raise ValueError(f"bad quantity for {{line.sku}}")
        total += line.unit_price * line.quantity
    if coupon is not None:
        total = total - coupon.amount
    rate = tax_rate_for(customer.country)
    total = total + total * rate
    return total.quantize(Decimal("0.01"))


@transaction.atomic
def create_invoice(customer, lines, coupon=None):
    invoice = Invoice.objects.create(customer=customer, total={func}(customer, lines, coupon))
    for line in lines:
        InvoiceLine.objects.create(invoice=invoice, sku=line.sku, quantity=line.quantity, price=line.unit_price)
    logger.info("invoice created", extra={{"invoice": invoice.pk}})
    return invoice
"""

TS_COMPONENT = """import React, {{ useEffect, useState }} from "react";
import {{ fetchOrders, Order }} from "../api/orders";

export function {name}({{ customerId }}: {{ customerId: string }}) {{
  const [orders, setOrders] = useState<Order[]>([]);
  const [filter, setFilter] = useState({{ status: "open" }});

  useEffect(() => {{
    fetchOrders(customerId, filter).then((result) => {{
      setOrders(result);
      setFilter({{ ...filter }});
    }});
  }}, [customerId, filter]);

  return (
    <ul>
      {{orders.map((o) => (
        <li key={{o.id}}>{{o.number}} — {{o.total}}</li>
      ))}}
    </ul>
  );
}}
"""

GO_HANDLER = """package handlers

import (
\t"encoding/json"
\t"net/http"
\t"strconv"
)

func (h *Handler) {name}(w http.ResponseWriter, r *http.Request) {{
\tpage, _ := strconv.Atoi(r.URL.Query().Get("page"))
\tsize, _ := strconv.Atoi(r.URL.Query().Get("size"))
\torders, err := h.store.ListOrders(r.Context(), page*size, size)
\tif err != nil {{
\t\thttp.Error(w, err.Error(), http.StatusInternalServerError)
\t\treturn
\t}}
\tjson.NewEncoder(w).Encode(orders)
}}
"""

LOCKING_CODE = """def claim_next_job(conn, worker_id):
    row = conn.execute(
        "SELECT id FROM jobs WHERE status = 'queued' ORDER BY run_at LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    redis.set(f"lock:{{row.id}}", worker_id, ex=30)
    conn.execute("UPDATE jobs SET status = 'running', worker = %s WHERE id = %s", (worker_id, row.id))
    return row.id
"""

TRACEBACK = """Traceback (most recent call last):
  File "{file}", line 88, in {func}
    user = users[payload["user_id"]]
KeyError: 'user_id'
"""

PYTEST_OUTPUT = """============================= test session starts ==============================
collected 148 items

tests/test_orders.py ........................................F.....           [ 31%]
tests/test_invoices.py ...............F.......................                [ 57%]
tests/test_accounts.py ..............................................        [100%]

=================================== FAILURES ===================================
___________________________ test_{func}_rounding ____________________________
E       AssertionError: assert Decimal('10.01') == Decimal('10.00')
___________________________ test_cancel_order_twice ____________________________
E       django.db.utils.IntegrityError: duplicate key value violates unique constraint
========================= 2 failed, 146 passed in 41.22s =========================
"""

LOG_LINES = """2025-03-02T10:14:01Z INFO  worker-3 job=8812 started
2025-03-02T10:14:02Z ERROR worker-3 job=8812 upstream timeout after 30s
2025-03-02T10:14:05Z INFO  worker-1 job=8813 started
2025-03-02T10:14:09Z WARN  worker-1 job=8813 retrying (1/3)
2025-03-02T10:14:12Z ERROR worker-1 job=8813 connection reset by peer
2025-03-02T10:14:20Z INFO  worker-2 job=8814 finished in 3.1s
"""

JOBS_JSON = """{"jobs": [
  {"id": "j-101", "status": "succeeded", "duration": 12.4},
  {"id": "j-102", "status": "failed", "error": "OOMKilled"},
  {"id": "j-103", "status": "failed", "error": "exit code 2"},
  {"id": "j-104", "status": "running"}
]}"""

DIFF = """diff --git a/{file} b/{file}
@@ -12,7 +12,9 @@ def {func}(session, url, attempts=3):
-    for _ in range(attempts):
+    for attempt in range(attempts):
         try:
             return session.get(url, timeout=10)
-        except ConnectionError:
-            pass
+        except ConnectionError as exc:
+            logger.warning("request failed", extra={{"attempt": attempt, "error": str(exc)}})
+            time.sleep(2**attempt)
"""

LS_OUTPUT = """total 64
drwxr-xr-x  9 dev staff   288 Mar  2 10:02 .
drwxr-xr-x 14 dev staff   448 Mar  1 18:40 ..
-rw-r--r--  1 dev staff  1843 Mar  2 09:55 __init__.py
-rw-r--r--  1 dev staff  9120 Mar  2 10:01 models.py
-rw-r--r--  1 dev staff  4410 Feb 27 16:12 services.py
-rw-r--r--  1 dev staff  2210 Feb 25 11:30 tasks.py
drwxr-xr-x  6 dev staff   192 Mar  1 12:00 tests
-rw-r--r--  1 dev staff  6034 Mar  2 10:02 views.py
-rw-r--r--  1 dev staff   512 Jan 30 09:12 urls.py
"""

GREP_OUTPUT = """{file}:42:    user = {func}(email)
src/accounts/forms.py:88:        if {func}(cleaned["email"]):
src/accounts/api.py:17:from accounts.services import {func}
src/accounts/api.py:55:    existing = {func}(payload.email)
tests/accounts/test_services.py:23:def test_{func}_is_case_insensitive():
tests/accounts/test_services.py:27:    assert {func}("A@B.COM") == user
"""

CODE_SNIPPETS = (PY_SERVICE, TS_COMPONENT, GO_HANDLER)
