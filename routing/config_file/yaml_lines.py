"""YAML loading for the gateway config file, remembering the line of every key.

``load_yaml`` returns plain Python values (``yaml.safe_load`` semantics) plus a
map from each key path, e.g. ``("routing", "tiers", 1, "model")``, to the line
it sits on, so every later error can say where in the file it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

KeyPath = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"


def format_path(path: KeyPath) -> str:
    """``("routing", "tiers", 1, "model")`` -> ``routing.tiers[1].model``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass(frozen=True)
class Issue:
    """A problem found in a config file: where (key path, line) and what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        location = self.path
        if self.line:
            location = f"{location} at line {self.line}" if location else f"line {self.line}"
        return f"{location}: {self.message}" if location else self.message


class ConfigError(Exception):
    """The config file is invalid; ``issues`` says where and why. Nothing was changed."""

    def __init__(self, issues: Iterable[Issue], source: str = "<string>") -> None:
        self.issues = tuple(issues)
        self.source = source
        if len(self.issues) == 1:
            message = f"{source}: {self.issues[0]}"
        else:
            details = "\n".join(f"  {issue}" for issue in self.issues)
            message = f"{source}: {len(self.issues)} errors\n{details}"
        super().__init__(message)


@dataclass(frozen=True)
class LoadedYaml:
    """A parsed YAML document and the line of each key path in it."""

    data: object
    lines: Mapping[KeyPath, int] = field(default_factory=dict, repr=False)

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor present in the file."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1 if self.lines else None


def load_yaml(text: str, *, source: str = "<string>") -> LoadedYaml:
    """Parse one YAML document; raise ``ConfigError`` (with the line) on bad syntax or duplicate keys."""
    try:
        loader = yaml.SafeLoader(text)  # refuses non-printable characters already (found by Schemathesis)
    except yaml.YAMLError as exc:
        raise ConfigError([Issue("", None, f"invalid YAML: {exc}")], source) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            return LoadedYaml(data=None)
        lines: dict[KeyPath, int] = {}
        duplicates: list[Issue] = []
        _index(node, (), lines, duplicates, frozenset())
        if duplicates:
            raise ConfigError(duplicates, source)
        # Constructing after indexing: merge keys (<<) are flattened in place by the constructor.
        return LoadedYaml(data=loader.construct_document(node), lines=lines)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_issue(exc)], source) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([Issue("", None, f"invalid YAML: {exc}")], source) from exc
    finally:
        loader.dispose()


def _syntax_issue(exc: yaml.MarkedYAMLError) -> Issue:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "syntax error"
    if mark is None:
        return Issue("", None, f"invalid YAML: {problem}")
    return Issue("", mark.line + 1, f"invalid YAML: {problem} (column {mark.column + 1})")


def _index(
    node: Node, path: KeyPath, lines: dict[KeyPath, int], duplicates: list[Issue], ancestors: frozenset[int]
) -> None:
    """Record the line of every key and list item under ``node``; collect duplicate keys."""
    if id(node) in ancestors:  # a recursive alias
        return
    ancestors = ancestors | {id(node)}
    if isinstance(node, MappingNode):
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            child = (*path, key)
            if key in first_seen:
                duplicates.append(Issue(format_path(child), line, f"duplicate key (first at line {first_seen[key]})"))
                continue
            first_seen[key] = line
            lines[child] = line
            _index(value_node, child, lines, duplicates, ancestors)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _index(item, child, lines, duplicates, ancestors)
