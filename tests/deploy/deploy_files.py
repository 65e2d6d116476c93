"""Readers for the deployment files (compose, Dockerfile, systemd units) and the README's settings table."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

BASE_DIR = Path(__file__).resolve().parent.parent.parent
PROJECT_SOURCES = ("gateway_platform", "tenants", "providers", "routing", "billing", "caching", "serving")


def documented_settings() -> set[str]:
    """Every variable named in the README's configuration table."""
    text = (BASE_DIR / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line))
    return names


def source_text() -> str:
    """All runtime Python source and bundled config of the project (not tests)."""
    parts = []
    for folder in PROJECT_SOURCES:
        root = BASE_DIR / folder
        if root.exists():
            parts.extend(p.read_text() for p in root.rglob("*.py") if "migrations" not in p.parts)
            parts.extend(p.read_text() for p in root.rglob("*.yaml"))
    return "\n".join(parts)


def compose() -> dict[str, Any]:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (BASE_DIR / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    result = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV":
            for token in shlex.split(args):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def systemd_units() -> dict[str, dict[str, list[str]]]:
    """Each unit's ``[Service]`` keys with all their values."""
    units = {}
    for path in sorted((BASE_DIR / "deploy" / "systemd").glob("*.service")):
        section = ""
        keys: dict[str, list[str]] = {}
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section == "Service":
                key, _, value = line.partition("=")
                keys.setdefault(key, []).append(value)
        units[path.name] = keys
    return units


def env_file(path: Path) -> dict[str, str]:
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env
