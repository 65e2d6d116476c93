"""Guardrail for destructive commands in answers (seed 000's ``security`` section).

A tenant's ``GuardrailPolicy`` lists commands (``rm``, ``sudo``, ``chmod``, ...)
and a mode. When an answer would have an agent run one of them, that is, the
command appears in a fenced code block or in a tool call's arguments, the
answer is allowed, annotated (``X-Gateway-Guardrail: annotated; commands=rm,sudo``
and a logged event) or blocked (replaced by a refusal, ``finish_reason``
``content_filter``). Prose that merely mentions a command is not a finding.

Detection is a lenient shell reading, not a regex over words: each line is
split into simple commands (``;``, ``&&``, ``||``, pipes, ``$(...)``,
backticks), wrappers are looked through (``sudo``, ``env``, ``xargs``,
``timeout``, ``find -exec``, ``bash -c '...'``, Dockerfile ``RUN``), and the
command word itself (``/bin/rm`` counts as ``rm``) is compared with the list,
so ``alarm``, ``format`` or ``confirm`` never match ``rm``. Code blocks in
other languages are searched for shell calls (``os.system``, ``subprocess.*``,
``child_process.exec*``, ``Runtime.exec``, ``shell_exec``...).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from routing.reduction.fences import find_fences

ALLOW, ANNOTATE, BLOCK = "allow", "annotate", "block"
ANNOTATED, BLOCKED = "annotated", "blocked"
HEADER = "X-Gateway-Guardrail"

SHELL_LANGUAGES = frozenset(
    [
        "sh",
        "bash",
        "shell",
        "zsh",
        "fish",
        "ksh",
        "console",
        "shell-session",
        "sh-session",
        "terminal",
        "powershell",
        "ps",
        "ps1",
        "pwsh",
        "bat",
        "batch",
        "cmd",
        "dockerfile",
        "docker",
        "makefile",
        "make",
        "text",
        "txt",
        "plaintext",
    ]
) | {""}  # an unlabelled block is read as shell: that is where agents put commands
_WRAPPERS = frozenset(
    [
        "sudo",
        "doas",
        "env",
        "nohup",
        "time",
        "exec",
        "command",
        "builtin",
        "nice",
        "ionice",
        "xargs",
        "timeout",
        "then",
        "do",
        "else",
        "if",
        "while",
        "until",
        "!",
        "run",
        "watch",
        "strace",
        "caffeinate",
        "stdbuf",
    ]
)
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish"})
_EXEC_FLAGS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_SEPARATORS_RE = re.compile(r"&&|\|\||[;|&\n(){}`]|\$\(")
_ASSIGNMENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PROMPT_RE = re.compile(r"^\s*(?:[$%>]|PS [^>]*>)\s+")
_JSON_STRING_RE = re.compile(r'"((?:\\.|[^"\\])*)(?:"|$)')
_SHELL_CALL_RE = re.compile(
    r"(?:os\.system|os\.popen|subprocess\.\w+|commands\.getoutput|child_process\.\w+|execSync|execFileSync|spawnSync"
    r"|\bexec|\bspawn|Runtime\.getRuntime\(\)\.exec|shell_exec|\bsystem|\bpassthru|\bpopen|Command::new)"
    r"\s*\(\s*(?P<list>\[\s*)?(?P<quote>[\"'`])(?P<arg>(?:\\.|(?!(?P=quote)).)*)(?P=quote)",
)


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    """What the guardrail did to one answer: ``action`` is ``annotated``, ``blocked`` or empty."""

    action: str = ""
    commands: tuple[str, ...] = ()

    @property
    def header(self) -> str:
        """The ``X-Gateway-Guardrail`` value (and the SSE comment of a stream)."""
        return f"{self.action}; commands={','.join(self.commands)}"


def _word(token: str) -> str:
    return os.path.basename(token.strip("\"'\\")).lower()


def _simple_command(tokens: list[str], watched: frozenset[str], found: set[str]) -> None:
    index = 0
    while index < len(tokens):
        token = tokens[index]
        word = _word(token)
        if _ASSIGNMENT_RE.match(token) or not word:
            index += 1
            continue
        if word in watched:
            found.add(word)
        if word in _WRAPPERS:
            index += 1
            while index < len(tokens) and tokens[index].startswith("-"):
                index += 1  # the wrapper's options (values of -u and friends are rare enough to ignore)
            if word == "timeout" and index < len(tokens):
                index += 1  # its duration
            continue
        if word in _SHELLS and "-c" in tokens[index + 1 :]:
            rest = tokens[tokens.index("-c", index + 1) + 1 :]
            scan_shell(" ".join(rest).strip("\"'"), watched, found)
        break
    for position, token in enumerate(tokens[:-1]):
        if token in _EXEC_FLAGS and _word(tokens[position + 1]) in watched:
            found.add(_word(tokens[position + 1]))


def scan_shell(text: str, watched: frozenset[str], found: set[str]) -> None:
    """Add to ``found`` the watched commands ``text`` (shell, possibly several lines) would run."""
    text = text.replace("\\\n", " ")
    for line in text.splitlines() or [text]:
        line = _PROMPT_RE.sub("", line, count=1)
        for segment in _SEPARATORS_RE.split(line):
            tokens = segment.split()
            if "#" in segment:
                tokens = tokens[: next((n for n, t in enumerate(tokens) if t.startswith("#")), len(tokens))]
            if tokens:
                _simple_command(tokens, watched, found)


def scan_code(language: str, body: str, watched: frozenset[str], found: set[str]) -> None:
    """Watched commands in one code block: read as shell, or searched for shell calls in other languages."""
    if language in SHELL_LANGUAGES:
        scan_shell(body, watched, found)
        return
    for match in _SHELL_CALL_RE.finditer(body):
        argument = match.group("arg")
        if match.group("list"):
            word = _word(argument)
            if word in watched:
                found.add(word)
        else:
            scan_shell(argument, watched, found)


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def scan_answer(text: str, tool_arguments: Sequence[str], commands: Sequence[str]) -> tuple[str, ...]:
    """The listed commands an answer's code blocks or tool-call arguments contain, in the list's order."""
    watched = frozenset(c.strip().lower() for c in commands if c.strip())
    if not watched:
        return ()
    found: set[str] = set()
    for fence in find_fences(text):
        scan_code(fence.language, fence.body, watched, found)
    for raw in tool_arguments:
        try:
            values = list(_strings(json.loads(raw)))
        except ValueError:  # arguments cut short (a stream that ended early): read its strings as they are
            values = [m.group(1).replace("\\n", "\n") for m in _JSON_STRING_RE.finditer(raw)] or [raw]
        for value in values:
            scan_shell(value, watched, found)
    return tuple(dict.fromkeys(c.strip().lower() for c in commands if c.strip().lower() in found))


def decide(mode: str, found: Sequence[str]) -> GuardrailResult:
    """The action for an answer in which ``found`` were detected, under a policy's mode."""
    if not found or mode == ALLOW:
        return GuardrailResult()
    return GuardrailResult(BLOCKED if mode == BLOCK else ANNOTATED, tuple(found))


def refusal(commands: Sequence[str]) -> str:
    """The answer that replaces a blocked one."""
    listed = ", ".join(f"`{c}`" for c in commands)
    return (
        f"The gateway withheld this answer: it contained commands ({listed}) that your organisation's policy "
        "requires a person to confirm before an assistant runs them. Ask for the steps as an explanation, "
        "run them yourself after review, or ask an administrator about the guardrail policy."
    )
