"""Request templates for the routing workload, each labelled with the cheapest tier that should serve it.

Labels follow seed 000's split: ``simple_ops`` for looking things up and
trivial edits (listing, grep, reading, renames, commit messages, parsing
output), ``code_gen`` for writing or changing real code (scripts, features,
tests, refactors, ordinary debugging), ``complex_reasoning`` for design,
planning and hard system-level problems (architecture, migrations across
services, concurrency and distributed bugs, proofs, threat models).

Phrasings were written to be varied and natural — several deliberately carry
none of the scorer's keywords — and templates, not instances, are split into
the dev and held-out sets (``workload.split_of``).
"""

from __future__ import annotations

from dataclasses import dataclass

SIMPLE, CODE, COMPLEX = "simple_ops", "code_gen", "complex_reasoning"


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    kind: str
    label: str
    text: str


# Assumed completion tokens per request kind (what the answer typically costs).
COMPLETION_TOKENS = {
    "list_files": 150,
    "grep": 200,
    "read_explain": 350,
    "small_edit": 300,
    "shell_git": 150,
    "parse_output": 250,
    "script": 1100,
    "feature": 900,
    "refactor": 1600,
    "debug": 800,
    "architecture": 2000,
    "planning": 1800,
    "system_debug": 1500,
    "hard_logic": 1800,
}

T = Template
TEMPLATES: tuple[Template, ...] = (
    # -- simple_ops: listing ------------------------------------------------------------------------
    T("ls-1", "list_files", SIMPLE, "list the files in {dir}"),
    T("ls-2", "list_files", SIMPLE, "what's in the {dir} folder?"),
    T("ls-3", "list_files", SIMPLE, "show me the directory structure of {dir}, just names, two levels deep"),
    T("ls-4", "list_files", SIMPLE, "ls -la {dir}"),
    T("ls-5", "list_files", SIMPLE, "Which files under {dir} changed in the last two days?"),
    T("ls-6", "list_files", SIMPLE, "how many python files are there in {dir}?"),
    T("ls-7", "list_files", SIMPLE, "is there a Dockerfile somewhere in this repo?"),
    # -- simple_ops: grep -------------------------------------------------------------------------------
    T("grep-1", "grep", SIMPLE, "find all usages of {func}"),
    T("grep-2", "grep", SIMPLE, "grep for TODO comments in {dir}"),
    T("grep-3", "grep", SIMPLE, "where is {const} defined?"),
    T("grep-4", "grep", SIMPLE, "search the codebase for calls to {func} that pass timeout=None"),
    T("grep-5", "grep", SIMPLE, "Which modules import {module}?"),
    T("grep-6", "grep", SIMPLE, "find every place we read the {const} setting"),
    T("grep-7", "grep", SIMPLE, "do we still use `{func}` anywhere outside the tests?"),
    # -- simple_ops: reading and quick questions ------------------------------------------------------
    T("read-1", "read_explain", SIMPLE, "show me the contents of {file}"),
    T("read-2", "read_explain", SIMPLE, "open {file} and show me the {func} function"),
    T("read-3", "read_explain", SIMPLE, "what does `{func}` return when the input is empty?"),
    T("read-4", "read_explain", SIMPLE, "what does this do?\n```python\n{short_code}\n```"),
    T("read-5", "read_explain", SIMPLE, "what does the `{flag}` flag do in {tool}?"),
    T("read-6", "read_explain", SIMPLE, "explain this regex in one sentence: `{regex}`"),
    T("read-7", "read_explain", SIMPLE, "what's the default port for {service}?"),
    # -- simple_ops: small edits --------------------------------------------------------------------
    T("edit-1", "small_edit", SIMPLE, "rename `{var}` to `{var2}` in {file}"),
    T("edit-2", "small_edit", SIMPLE, "fix the typo in the docstring of {func}: 'recieve' should be 'receive'"),
    T("edit-3", "small_edit", SIMPLE, "add a docstring to {func} in {file}"),
    T("edit-4", "small_edit", SIMPLE, "change the default timeout in {file} from 30 to 60 seconds"),
    T("edit-5", "small_edit", SIMPLE, "bump the version in pyproject.toml to {version}"),
    T("edit-6", "small_edit", SIMPLE, "remove the unused imports from {file}"),
    T("edit-7", "small_edit", SIMPLE, "add {pkg} to requirements.txt, pinned to the latest 2.x"),
    T("edit-8", "small_edit", SIMPLE, "make {const} come from the environment, keeping the current value as default"),
    T("edit-9", "small_edit", SIMPLE, "update the copyright year in the README footer to 2025"),
    # -- simple_ops: shell and git ------------------------------------------------------------------
    T("git-1", "shell_git", SIMPLE, "run the tests in {test_file}"),
    T("git-2", "shell_git", SIMPLE, "what's the git command to undo my last commit but keep the changes?"),
    T("git-3", "shell_git", SIMPLE, "write a commit message for this diff:\n```diff\n{diff}\n```"),
    T("git-4", "shell_git", SIMPLE, "show me the git log for {file} for the last week"),
    T("git-5", "shell_git", SIMPLE, "create a branch feature/{branch} off main and switch to it"),
    T("git-6", "shell_git", SIMPLE, "how do I install {pkg} in editable mode?"),
    T("git-7", "shell_git", SIMPLE, "start the dev server"),
    # -- simple_ops: parsing output -----------------------------------------------------------------
    T("parse-1", "parse_output", SIMPLE, "parse this and list the ids of the failed jobs:\n```json\n{jobs_json}\n```"),
    T("parse-2", "parse_output", SIMPLE, "count the lines with ERROR in this log:\n```\n{log}\n```"),
    T("parse-3", "parse_output", SIMPLE, "what does this error message mean: `{errmsg}`"),
    T("parse-4", "parse_output", SIMPLE, "which tests failed here?\n```\n{pytest_out}\n```"),
    T(
        "parse-5",
        "parse_output",
        SIMPLE,
        "convert this yaml to json:\n```yaml\nname: api\nreplicas: 3\nports: [80, 443]\n```",
    ),
    T("parse-6", "parse_output", SIMPLE, "extract the email addresses from this: {emails}"),
    # -- code_gen: scripts --------------------------------------------------------------------------
    T("script-1", "script", CODE, "write a python script that {script_task}"),
    T("script-2", "script", CODE, "I need a bash script to {bash_task}"),
    T("script-3", "script", CODE, "Create a small CLI in {lang} that {script_task}"),
    T("script-4", "script", CODE, "can you whip up a quick program that {script_task}? I'll run it from cron"),
    T("script-5", "script", CODE, "Generate a multi-stage Dockerfile for a {framework} app with a non-root user"),
    T("script-6", "script", CODE, "I want something that {script_task}. Python is fine."),
    # -- code_gen: features and tests -----------------------------------------------------------------
    T("feat-1", "feature", CODE, "implement {feature} in {file}"),
    T("feat-2", "feature", CODE, "add pagination to the {endpoint} endpoint, cursor based"),
    T("feat-3", "feature", CODE, "write unit tests for {func} covering the edge cases"),
    T("feat-4", "feature", CODE, "add retry with exponential backoff and jitter to {func}"),
    T("feat-5", "feature", CODE, "add input validation to the signup form: {rule}"),
    T("feat-6", "feature", CODE, "make {func} cache its results for five minutes per customer"),
    T("feat-7", "feature", CODE, "support CSV export in the monthly report, same columns as the PDF"),
    T("feat-8", "feature", CODE, "here's the handler, add an optional `status` filter to it:\n```go\n{go_code}\n```"),
    # -- code_gen: refactoring ----------------------------------------------------------------------
    T("refac-1", "refactor", CODE, "refactor {cls} to take its repository as a constructor argument"),
    T("refac-2", "refactor", CODE, "extract the validation logic from {file} into its own module"),
    T("refac-3", "refactor", CODE, "convert {file} from callbacks to async/await"),
    T("refac-4", "refactor", CODE, "{file} is 900 lines, split it into smaller modules that make sense"),
    T("refac-5", "refactor", CODE, "this function is too long, break it up:\n```python\n{py_code}\n```"),
    T("refac-6", "refactor", CODE, "clean up the duplication between {file} and {file2}"),
    T("refac-7", "refactor", CODE, "move the database access out of the views into a repository layer"),
    T("refac-8", "refactor", CODE, "Replace the hand-rolled retry loops in {dir} with tenacity"),
    # -- code_gen: ordinary debugging -------------------------------------------------------------------
    T("debug-1", "debug", CODE, "getting this when I run the importer:\n```\n{traceback}\n```"),
    T("debug-2", "debug", CODE, "{func} fails with `{error}`, what's wrong?\n```python\n{py_code}\n```"),
    T("debug-3", "debug", CODE, "why does {func} return None when the list is empty?"),
    T("debug-4", "debug", CODE, "the cart page shows the wrong total when a coupon is applied twice"),
    T("debug-5", "debug", CODE, "fix the bug where {bug}"),
    T("debug-6", "debug", CODE, "my {framework} app crashes on startup with {error}"),
    T("debug-7", "debug", CODE, "this component keeps re-rendering forever:\n```tsx\n{ts_code}\n```"),
    T(
        "debug-8",
        "debug",
        CODE,
        "two tests started failing after the rebase, can you sort it out?\n```\n{pytest_out}\n```",
    ),
    # -- complex_reasoning: architecture --------------------------------------------------------------
    T(
        "arch-1",
        "architecture",
        COMPLEX,
        "We're splitting the monolith. How should we draw the boundaries between {d1}, {d2} and {d3}? "
        "Think about data ownership and what happens to the reports that join across them.",
    ),
    T("arch-2", "architecture", COMPLEX, "design a multi-region active-active setup for our {db}-backed API"),
    T("arch-3", "architecture", COMPLEX, "event sourcing or plain CRUD for the {d1} system? we have 6 engineers"),
    T("arch-4", "architecture", COMPLEX, "how should we architect tenant isolation so {product} scales to 5k tenants?"),
    T(
        "arch-5",
        "architecture",
        COMPLEX,
        "Kafka vs RabbitMQ for {use_case} — what are the trade-offs for a small team?",
    ),
    T(
        "arch-6",
        "architecture",
        COMPLEX,
        "We cache {what} in Redis with a 10 minute TTL and users see stale data right after they save. "
        "What should the caching approach look like instead?",
    ),
    T("arch-7", "architecture", COMPLEX, "what would a sane service layout look like for {product} in two years?"),
    # -- complex_reasoning: planning ----------------------------------------------------------------
    T("plan-1", "planning", COMPLEX, "plan the migration of our {n} services from {old} to {new} with no downtime"),
    T("plan-2", "planning", COMPLEX, "break the rewrite of the {component} down into phases we can ship one by one"),
    T(
        "plan-3",
        "planning",
        COMPLEX,
        "we need to move from one Postgres to sharded Postgres. Give me the sequence: backfill, dual writes, "
        "cutover, rollback.",
    ),
    T("plan-4", "planning", COMPLEX, "how do we get CI from 40 minutes to under 10? lay out the steps in order"),
    T("plan-5", "planning", COMPLEX, "how do we retire API v1 when 200 customers still call it?"),
    # -- complex_reasoning: system-level debugging ----------------------------------------------------------
    T(
        "sys-1",
        "system_debug",
        COMPLEX,
        "Under load the same job sometimes runs twice on two workers. This is how a worker claims a job:\n"
        "```python\n{locking_code}\n```\nWhat's going on and how do we make claiming safe?",
    ),
    T("sys-2", "system_debug", COMPLEX, "our {component} deadlocks about once a day in production, only under load"),
    T(
        "sys-3",
        "system_debug",
        COMPLEX,
        "after a failover the replicas disagree on order totals for a few minutes. where could that come from?",
    ),
    T(
        "sys-4",
        "system_debug",
        COMPLEX,
        "p99 latency went from 80ms to 2s after Tuesday's deploy, only in {region}, CPU is flat. "
        "How do we find the cause?",
    ),
    T("sys-5", "system_debug", COMPLEX, "memory in the async worker grows for days until it's OOM-killed"),
    # -- complex_reasoning: hard logic --------------------------------------------------------------
    T(
        "logic-1",
        "hard_logic",
        COMPLEX,
        "is this job-claiming code safe with two workers?\n```python\n{locking_code}\n```",
    ),
    T("logic-2", "hard_logic", COMPLEX, "give me an algorithm for {problem} that's better than quadratic"),
    T("logic-3", "hard_logic", COMPLEX, "threat model our SSO login flow: {sso}"),
    T(
        "logic-4",
        "hard_logic",
        COMPLEX,
        "how do we guarantee exactly-once processing between the payments DB and Kafka?",
    ),
    T(
        "logic-5",
        "hard_logic",
        COMPLEX,
        "our sliding-window rate limiter keeps one counter per second and sums the last 60; can it ever admit "
        "more than N requests in a window? show why or give the interleaving that breaks it",
    ),
)

# A short follow-up keeps the previous task's label ("do the same for ...").
FOLLOW_UPS = (
    "ok, do the same for {file2}",
    "yes, go ahead",
    "and for {dir} too",
    "looks good, apply it",
    "now the other one",
)
