"""Typed reading of plain YAML values, collecting errors and warnings with key path and line.

``ValueReader`` is the vocabulary the config-file schema is written in: each
getter reads one key of a mapping, checks its type and range, records an
``Issue`` (path + line) when it is wrong and returns a harmless default so the
caller can keep going and report every problem at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from routing.config_file.yaml_lines import Issue, KeyPath, LoadedYaml, format_path

# Prices are DecimalField(max_digits=12, decimal_places=6) on Model and Tier.
PRICE_PLACES = 6
PRICE_LIMIT = Decimal(10) ** 6
MAX_INTEGER = 2**31 - 1  # PostgreSQL integer
SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")
ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")

_D = TypeVar("_D")


def describe(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def decimal_places(number: Decimal) -> int:
    """How many digits ``number`` has after the decimal point (as written: 0.150 has 3)."""
    exponent = number.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def is_http_url(value: str) -> bool:
    """An http(s) URL with a host. Unlike Django's URLValidator, single-label hosts such as
    ``http://ollama:11434`` (a container on a compose network) are accepted."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in value)


class ValueReader:
    """Reads values out of a loaded YAML document; ``errors`` and ``warnings`` collect what it found."""

    def __init__(self, document: LoadedYaml) -> None:
        self.document = document
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(Issue(format_path(path), self.document.line(path), message))

    def warn(self, path: KeyPath, message: str) -> None:
        self.warnings.append(Issue(format_path(path), self.document.line(path), message))

    def mapping(
        self, value: object, path: KeyPath, *, known: Collection[str], required: Collection[str] = ()
    ) -> dict[str, Any] | None:
        """``value`` if it is a mapping; warns about unknown keys, errors on missing required ones."""
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {describe(value)}")
            return None
        for key in value:
            if key not in known:
                self.warn((*path, str(key)), "unknown key — ignored")
        for key in required:
            if value.get(key) is None:
                self.error((*path, key), "missing required key")
        return value

    def sequence(self, value: object, path: KeyPath) -> list[Any]:
        """``value`` if it is a list; empty (null) means no items."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {describe(value)}")
            return []
        return value

    def text(
        self,
        entry: dict[str, Any],
        path: KeyPath,
        key: str,
        *,
        default: str = "",
        max_length: int | None = None,
        allow_empty: bool = False,
    ) -> str:
        value = entry.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.error((*path, key), f"expected a string, got {describe(value)}")
        elif not allow_empty and not value.strip():
            self.error((*path, key), "must not be empty")
        elif max_length is not None and len(value) > max_length:
            self.error((*path, key), f"longer than {max_length} characters")
        else:
            return value
        return default

    def slug(self, entry: dict[str, Any], path: KeyPath, key: str, length: int) -> str:
        value = self.text(entry, path, key, max_length=length)
        if value and not SLUG.match(value):
            self.error((*path, key), "may contain only letters, digits, '-' and '_'")
        return value

    def env_var(self, entry: dict[str, Any], path: KeyPath, key: str, length: int) -> str:
        value = self.text(entry, path, key, max_length=length, allow_empty=True)
        if value and not ENV_VAR.match(value):  # never echo it: it may be a pasted credential
            self.error((*path, key), "expected the name of an environment variable (not the credential itself)")
        return value

    def url(self, entry: dict[str, Any], path: KeyPath, key: str, length: int) -> str:
        value = self.text(entry, path, key, max_length=length)
        if value and not is_http_url(value):
            self.error((*path, key), "expected an http(s) URL with a host")  # not echoed: may hold a password
        return value

    def choice(self, entry: dict[str, Any], path: KeyPath, key: str, choices: list[str], *, default: _D) -> str | _D:
        value = entry.get(key)
        if value is None:
            return default
        if value not in choices:
            self.error((*path, key), f"expected one of {', '.join(choices)}, got {value!r}")
            return default
        return str(value)

    def price(self, entry: dict[str, Any], path: KeyPath, key: str, default: _D) -> Decimal | _D:
        value = self.number(entry, path, key)
        if value is None:
            return default
        price = Decimal(str(value))  # str() keeps what the file says: 0.15, not 0.1499999...
        if price < 0:
            self.error((*path, key), "must not be negative")
        elif decimal_places(price) > PRICE_PLACES:
            self.error((*path, key), f"at most {PRICE_PLACES} decimal places")
        elif price >= PRICE_LIMIT:
            self.error((*path, key), f"must be less than {PRICE_LIMIT}")
        else:
            return price
        return default

    def seconds(self, entry: dict[str, Any], path: KeyPath, key: str, default: float) -> float:
        value = self.number(entry, path, key)
        if value is None:
            return default
        if value < 0.1:
            self.error((*path, key), "must be at least 0.1 (seconds)")
            return default
        return float(value)

    def number(self, entry: dict[str, Any], path: KeyPath, key: str) -> int | float | None:
        value = entry.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.error((*path, key), f"expected a number, got {describe(value)}")
            return None
        return value

    def integer(self, entry: dict[str, Any], path: KeyPath, key: str, default: _D) -> int | _D:
        value = entry.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.error((*path, key), f"expected a whole number, got {describe(value)}")
        elif not 1 <= value <= MAX_INTEGER:
            self.error((*path, key), f"must be between 1 and {MAX_INTEGER}")
        else:
            return value
        return default

    def boolean(self, entry: dict[str, Any], path: KeyPath, key: str, *, default: bool = True) -> bool:
        value = entry.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error((*path, key), f"expected true or false, got {describe(value)}")
            return default
        return value

    def strings(
        self, entry: dict[str, Any], path: KeyPath, key: str, *, max_length: int | None = None
    ) -> tuple[str, ...]:
        value = entry.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error((*path, key), f"expected a list of strings, got {describe(value)}")
            return ()
        items: list[str] = []
        for index, item in enumerate(value):
            here = (*path, key, index)
            if not isinstance(item, str) or not item.strip():
                self.error(here, f"expected a non-empty string, got {describe(item)}")
            elif max_length is not None and len(item) > max_length:
                self.error(here, f"longer than {max_length} characters")
            else:
                items.append(item)
        return tuple(items)

    def json_compatible(self, value: object, path: KeyPath) -> bool:
        """True if ``value`` survives a JSON round trip unchanged; errors point at what does not."""
        if value is None or isinstance(value, str | bool | int):
            return True
        if isinstance(value, float):
            if math.isfinite(value):
                return True
            self.error(path, "infinity and NaN cannot be stored")
            return False
        # Lists, not generators, inside all(): every bad item gets its own error.
        if isinstance(value, list):
            return all([self.json_compatible(item, (*path, index)) for index, item in enumerate(value)])
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                self.error(path, "keys must be strings (quote them)")
                return False
            return all([self.json_compatible(item, (*path, key)) for key, item in value.items()])
        self.error(path, f"{describe(value)} cannot be stored; quote it as a string")
        return False
