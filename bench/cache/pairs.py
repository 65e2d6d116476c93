"""A labelled set of prompt pairs for the semantic cache (written for this benchmark).

Each family is one task phrased several ways, with slots for the literals
that make two requests different (file names, numbers, quoted strings, URLs,
identifiers, code, paths). From a family we draw

- **paraphrase pairs** (label ``hit``): two different phrasings, same literals —
  the cache should answer the second with the first's answer;
- **near-duplicate pairs** (label ``miss``): the same or another phrasing with one
  literal changed — serving the cached answer would be wrong.

``hard_pairs`` are wording-only changes that flip the meaning (negation,
direction, another language): no literal differs, so they test the guard's
word lists and the threshold, and are reported separately.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SLOTS: dict[str, list[str]] = {
    "file": [
        "report.csv",
        "sales_2023.csv",
        "users.json",
        "notes.md",
        "config.yaml",
        "main.py",
        "server.log",
        "invoice_17.pdf",
        "schema.sql",
        "app.tsx",
        "Dockerfile.dev",
        "requirements.txt",
        "data.parquet",
    ],
    "path": [
        "src/api/handlers.py",
        "./scripts/deploy.sh",
        "/etc/nginx/nginx.conf",
        "tests/unit/test_auth.py",
        "~/projects/web/package.json",
        "lib/utils/strings.ts",
        "docs/architecture.md",
        "/var/log/syslog",
    ],
    "num": ["5", "10", "12", "20", "25", "50", "100", "3", "7", "250", "1000", "42"],
    "quote": [
        '"hello world"',
        '"Access denied"',
        '"fix login bug"',
        '"user_not_found"',
        '"Quarterly Review"',
        '"retry later"',
        '"Payment received"',
        '"invalid token"',
    ],
    "url": [
        "https://api.example.com/v1/users",
        "https://example.org/docs/install",
        "https://status.example.net",
        "https://github.com/acme/widgets/issues/42",
        "https://example.com/pricing?plan=pro",
    ],
    "ident": [
        "parse_config",
        "load_users",
        "getUserById",
        "MAX_RETRIES",
        "send_invoice",
        "renderHeader",
        "validate_token",
        "OrderService",
        "compute_total",
        "fetchProfile",
    ],
    "code": [
        "`x = [i*i for i in range(10)]`",
        "`SELECT * FROM users WHERE id = 1`",
        "`git rebase -i HEAD~3`",
        "`df.groupby('city').size()`",
        "`curl -X POST localhost:8000`",
        "`ls -la | grep .py`",
    ],
}

FAMILIES: list[tuple[str, list[str]]] = [
    (
        "file",
        [
            "Summarise {file}",
            "Give me a summary of {file}",
            "Please summarise the contents of {file}",
            "Can you summarize {file} for me?",
        ],
    ),
    (
        "file",
        ["Count the lines in {file}", "How many lines does {file} have?", "Tell me the number of lines in {file}"],
    ),
    (
        "file",
        [
            "Find the bugs in {file}",
            "Look for bugs in {file}",
            "Are there any bugs in {file}?",
            "Review {file} and point out bugs",
        ],
    ),
    ("file", ["Convert {file} to JSON", "Turn {file} into JSON", "Please convert {file} into JSON format"]),
    (
        "file",
        [
            "Explain what {file} does",
            "What does {file} do?",
            "Describe the purpose of {file}",
            "Give me an explanation of what {file} does",
        ],
    ),
    ("file", ["Add type hints to {file}", "Please add type annotations to {file}", "Annotate {file} with type hints"]),
    ("file", ["Write unit tests for {file}", "Create unit tests for {file}", "Generate unit tests covering {file}"]),
    (
        "file",
        [
            "Translate the comments in {file} to English",
            "Translate the code comments of {file} into English",
            "Please translate every comment in {file} to English",
        ],
    ),
    (
        "path",
        [
            "Open {path} and list its functions",
            "List the functions defined in {path}",
            "Which functions does {path} define?",
        ],
    ),
    (
        "path",
        [
            "Check {path} for security issues",
            "Audit {path} for security problems",
            "Look for security vulnerabilities in {path}",
        ],
    ),
    (
        "path",
        [
            "Format {path} according to the style guide",
            "Reformat {path} following our style guide",
            "Apply the style guide formatting to {path}",
        ],
    ),
    (
        "path",
        [
            "Who last changed {path}?",
            "Show the last commit that touched {path}",
            "Which commit modified {path} most recently?",
        ],
    ),
    (
        "num",
        [
            "Show the first {num} lines of the log",
            "Print the first {num} lines of the log",
            "Display the first {num} lines of the log file",
        ],
    ),
    ("num", ["Generate {num} random passwords", "Create {num} random passwords", "Give me {num} random passwords"]),
    (
        "num",
        [
            "Set the request timeout to {num} seconds",
            "Change the request timeout to {num} seconds",
            "Make the request timeout {num} seconds",
        ],
    ),
    (
        "num",
        [
            "List the top {num} customers by revenue",
            "Show me the {num} customers with the highest revenue",
            "Which are the top {num} customers by revenue?",
        ],
    ),
    (
        "num",
        [
            "Retry the job {num} times before failing",
            "Make the job retry {num} times before it fails",
            "Configure {num} retries for the job before failing",
        ],
    ),
    (
        "num",
        [
            "Split the dataset into {num} chunks",
            "Divide the dataset into {num} chunks",
            "Break the dataset up into {num} chunks",
        ],
    ),
    (
        "num",
        [
            "Write a function that returns the {num}th Fibonacci number",
            "Implement a function returning Fibonacci number {num}",
            "Create a function to compute the {num}th Fibonacci number",
        ],
    ),
    (
        "num",
        [
            "Resize the images to {num} pixels wide",
            "Scale the images to a width of {num} pixels",
            "Make the images {num} pixels wide",
        ],
    ),
    (
        "quote",
        [
            "Write a commit message for {quote}",
            "Draft a commit message for {quote}",
            "Suggest a commit message for {quote}",
        ],
    ),
    ("quote", ["Translate {quote} into French", "How do you say {quote} in French?", "Give me the French for {quote}"]),
    (
        "quote",
        [
            "Search the codebase for the string {quote}",
            "Find where {quote} appears in the code",
            "Grep the repository for {quote}",
        ],
    ),
    (
        "quote",
        [
            "Make the error message say {quote}",
            "Change the error message to {quote}",
            "Update the error text to read {quote}",
        ],
    ),
    (
        "quote",
        [
            "Write a test that checks the page shows {quote}",
            "Add a test asserting the page displays {quote}",
            "Create a test verifying that {quote} is shown on the page",
        ],
    ),
    ("url", ["Fetch {url} and summarise it", "Summarise the page at {url}", "Download {url} and give me a summary"]),
    (
        "url",
        [
            "Why does {url} return a 500 error?",
            "What causes the 500 error at {url}?",
            "Explain the server error returned by {url}",
        ],
    ),
    (
        "url",
        [
            "Write a health check for {url}",
            "Create a health check that pings {url}",
            "Add a monitoring check for {url}",
        ],
    ),
    ("ident", ["Explain what {ident} does", "What does {ident} do?", "Describe the behaviour of {ident}"]),
    ("ident", ["Write a docstring for {ident}", "Add a docstring to {ident}", "Document {ident} with a docstring"]),
    ("ident", ["Find all callers of {ident}", "Where is {ident} called?", "List every place that calls {ident}"]),
    (
        "ident",
        ["Refactor {ident} to be more readable", "Make {ident} easier to read", "Clean up {ident} for readability"],
    ),
    ("ident", ["Why is {ident} slow?", "What makes {ident} slow?", "Explain the performance problem in {ident}"]),
    (
        "ident",
        [
            "Rename {ident} to something clearer",
            "Suggest a clearer name for {ident}",
            "Give {ident} a more descriptive name",
        ],
    ),
    ("code", ["Explain {code}", "What does {code} do?", "Walk me through {code}"]),
    ("code", ["Is there a bug in {code}?", "Does {code} contain a bug?", "Check {code} for bugs"]),
    ("code", ["Rewrite {code} to be more efficient", "Make {code} faster", "Optimise {code}"]),
    ("code", ["Add error handling to {code}", "Wrap {code} with error handling", "Make {code} handle errors"]),
    (
        "file",
        ["Deduplicate the rows in {file}", "Remove the duplicate rows from {file}", "Drop duplicated rows in {file}"],
    ),
    (
        "path",
        [
            "Generate a README section describing {path}",
            "Write README documentation for {path}",
            "Document {path} in the README",
        ],
    ),
    (
        "num",
        [
            "Paginate the results with {num} items per page",
            "Show {num} items per page in the results",
            "Use pages of {num} items for the results",
        ],
    ),
    (
        "quote",
        [
            "Rename the column {quote} to snake case",
            "Convert the column name {quote} to snake_case",
            "Change the column {quote} to use snake case",
        ],
    ),
]


@dataclass(frozen=True, slots=True)
class Pair:
    cached: str
    new: str
    should_hit: bool
    kind: str  # the slot kind (or the hard-pair category)
    family: int = -1  # index in FAMILIES


def _fill(template: str, slot: str, value: str) -> str:
    return template.replace("{" + slot + "}", value)


def labelled_pairs(seed: int = 7, per_family: int = 6) -> list[Pair]:
    """Paraphrase (hit) and near-duplicate (miss) pairs: ``per_family`` of each per family."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for family, (slot, phrasings) in enumerate(FAMILIES):
        values = SLOTS[slot]
        for _ in range(per_family):
            a, b = rng.sample(phrasings, 2)
            value = rng.choice(values)
            pairs.append(Pair(_fill(a, slot, value), _fill(b, slot, value), True, slot, family))
        for i in range(per_family):
            first, second = rng.sample(values, 2)
            a = rng.choice(phrasings)
            b = a if i % 2 == 0 else rng.choice(phrasings)  # half: only the literal differs
            pairs.append(Pair(_fill(a, slot, first), _fill(b, slot, second), False, slot, family))
    return pairs


HARD = [
    ("negation", "Use recursion to walk the tree", "Do not use recursion to walk the tree"),
    ("negation", "Include the tests in the coverage report", "Exclude the tests from the coverage report"),
    ("negation", "Log the password field", "Never log the password field"),
    ("direction", "Sort the users by age ascending", "Sort the users by age descending"),
    ("direction", "Encode the payload as base64", "Decode the payload from base64"),
    ("direction", "Enable debug logging", "Disable debug logging"),
    ("direction", "Convert the names to uppercase", "Convert the names to lowercase"),
    ("direction", "Make the function synchronous", "Make the function asynchronous"),
    ("language", "Rewrite this script in Python", "Rewrite this script in Rust"),
    ("language", "Convert the config to YAML", "Convert the config to TOML"),
    ("language", "Write the query for PostgreSQL", "Write the query for MySQL"),
    ("language", "Port the component to React", "Port the component to Vue"),
    ("extreme", "Return the largest element of the list", "Return the smallest element of the list"),
    ("extreme", "Find the oldest file in the folder", "Find the newest file in the folder"),
    ("action", "Add a column for the email address", "Remove the column for the email address"),
    ("action", "Merge the two branches", "Split the two branches"),
]


def hard_pairs() -> list[Pair]:
    """Meaning-flipping wording changes (label ``miss``)."""
    return [Pair(a, b, False, kind) for kind, a, b in HARD]
