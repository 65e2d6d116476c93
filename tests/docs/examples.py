"""The README's runnable examples: found by their marker, turned into something a test can run.

A runnable example is a fenced block right after an HTML comment
``<!-- example: NAME [expect="TEXT" ...] -->``. ``console`` blocks run their ``$ `` lines (a line
ending in ``\\`` continues on the next; other lines are shown output and are not run) in one bash
with ``set -euo pipefail``; ``python`` blocks run as a script. Each ``expect`` string must appear in
what the example prints. Everything here is a pure function so it can be unit-tested.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass

MARKER = re.compile(
    r"^(?P<indent>[ \t]*)<!-- example: (?P<name>[a-z0-9][a-z0-9-]*)(?P<opts>[^\n]*?)-->[ \t]*\n"
    r"(?P=indent)```(?P<lang>[a-z]+)[^\n]*\n(?P<body>.*?)\n(?P=indent)```",
    re.MULTILINE | re.DOTALL,
)
# What the README says and what a test run uses instead.
README_BASE_URL = "http://127.0.0.1:8000"
README_PYTHON = ".venv/bin/python"


@dataclass(frozen=True, slots=True)
class Example:
    name: str
    lang: str  # console | python
    body: str
    expect: tuple[str, ...]

    def script(self, *, base_url: str, python: str, manage_py: str) -> str:
        """The code to run, with the README's base URL and interpreter replaced by the test's."""
        code = self.body.replace(README_BASE_URL, base_url)
        if self.lang == "python":
            return code
        code = code.replace(f"{README_PYTHON} manage.py", f"{shlex.quote(python)} {shlex.quote(manage_py)}")
        return "set -euo pipefail\n" + "\n".join(console_commands(code)) + "\n"


def console_commands(text: str) -> list[str]:
    """The commands of a console transcript: ``$ `` lines with their ``\\`` continuations."""
    commands: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is not None:
            current.append(line)
        elif line.startswith("$ "):
            current = [line[2:]]
        else:
            continue  # shown output
        if not line.rstrip().endswith("\\"):
            commands.append("\n".join(current))
            current = None
    if current is not None:
        raise ValueError(f"a command ends with a continuation: {current[-1]!r}")
    return commands


def find_examples(markdown: str) -> list[Example]:
    """Every marked example of a Markdown text, in order; names must be unique."""
    found: list[Example] = []
    for match in MARKER.finditer(markdown):
        lang = match["lang"]
        if lang not in ("console", "python"):
            raise ValueError(f"example {match['name']}: cannot run a {lang!r} block")
        expect = tuple(re.findall(r'expect="([^"]*)"', match["opts"]))
        body = textwrap.dedent(match["body"]) if match["indent"] else match["body"]
        found.append(Example(match["name"], lang, body, expect))
    names = [e.name for e in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError("example names used twice: " + ", ".join(duplicates))
    return found
