"""Usage records: built on the hot path, normalised so that PostgreSQL always accepts them.

A record's fields come from the client (the model it asked for), the upstream
(token counts, error texts in ``attempts``) and the code of whichever version
wrote it (fields are added and removed across rolling deploys). None of that
may make the row unstorable, because the drain writes records of every tenant
together. So a record is normalised twice with the same rules: when it is built
(``UsageRecord.__post_init__``) and when the drain reads it back
(``record_from_payload``, for records written by other versions or spooled):

- text longer than its column is cut to fit, NUL characters are removed
  (PostgreSQL rejects them in text and in JSON);
- negative or out-of-range counts, costs and latencies are clamped into the
  column's range, a cost that is not a finite number becomes 0;
- JSON fields of the wrong type become empty, NULs inside them are removed;
- unknown fields (a newer version's) are dropped, missing optional ones take
  their defaults.

Each repair is counted in ``gateway_usage_records_repaired_total{reason}`` and
logged. What cannot be repaired (no request id, no timestamps, a tenant id that
is not a number) raises ``InvalidRecord``; the drain moves such a record to the
dead-letter stream instead of blocking the records behind it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from prometheus_client import Counter

logger = logging.getLogger(__name__)

REPAIRED = Counter(
    "gateway_usage_records_repaired_total",
    "Usage record fields repaired so the record can be stored (too long, NUL, out of range, unknown field).",
    ["reason"],
)

# Column limits of billing.models.UsageEvent (a test keeps the two in step).
TEXT_LIMITS: dict[str, int] = {
    "request_id": 64,
    "client_request_id": 128,
    "endpoint": 64,
    "requested_model": 200,
    "tier": 100,
    "model": 200,
    "provider": 100,
    "error_code": 64,
    "cache_status": 16,
    "skill": 100,
    "budget_status": 32,
    "guardrail": 32,
    "session": 200,
}
INT_MAX = 2_147_483_647  # PositiveIntegerField
SMALLINT_MAX = 32_767  # PositiveSmallIntegerField
INT_FIELDS: dict[str, int] = {
    "prompt_tokens": INT_MAX,
    "completion_tokens": INT_MAX,
    "cache_read_tokens": INT_MAX,
    "cache_write_tokens": INT_MAX,
    "latency_ms": INT_MAX,
    "ttft_ms": INT_MAX,
    "status_code": SMALLINT_MAX,
}
MONEY_FIELDS = ("cost_usd", "cost_saved_usd", "prompt_cache_saved_usd")
SIGNED_MONEY = frozenset({"prompt_cache_saved_usd"})  # a prompt-cache write can cost more than it saves
MONEY_MAX = Decimal("99999999.9999999999")  # max_digits=18, decimal_places=10
MONEY_QUANTUM = Decimal("1e-10")
JSON_FIELDS: dict[str, type] = {"attempts": list, "route_reason": dict, "tokens_saved": dict}
BOOL_FIELDS = ("tokens_estimated", "stream", "client_disconnected")
ID_FIELDS = ("tenant_id", "team_id", "api_key_id")
REQUIRED = ("request_id", "endpoint", "started_at", "finished_at", "status_code")


class InvalidRecord(ValueError):
    """A usage record that no repair can make storable (it goes to the dead-letter stream)."""


@dataclass(slots=True)
class UsageRecord:
    """One request's accounting, as produced on the hot path (normalised when built)."""

    request_id: str
    endpoint: str
    started_at: datetime
    finished_at: datetime
    status_code: int
    tenant_id: int | None = None
    team_id: int | None = None
    api_key_id: int | None = None
    client_request_id: str = ""
    requested_model: str = ""
    tier: str = ""
    model: str = ""
    provider: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    prompt_cache_saved_usd: Decimal = Decimal(0)
    session: str = ""
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    ttft_ms: int | None = None
    error_code: str = ""
    cache_status: str = "BYPASS"
    stream: bool = False
    client_disconnected: bool = False
    attempts: list[dict[str, Any]] = field(default_factory=list)
    skill: str = ""
    route_reason: dict[str, Any] = field(default_factory=dict)
    tokens_saved: dict[str, int] = field(default_factory=dict)
    cost_saved_usd: Decimal = Decimal(0)
    cache_similarity: float | None = None
    budget_status: str = ""
    guardrail: str = ""

    def __post_init__(self) -> None:
        # Most records need no repair: a text or count runs its rule only when a quick test fails.
        for name, limit in TEXT_LIMITS.items():
            value = getattr(self, name)
            if type(value) is not str or len(value) > limit or "\x00" in value:
                setattr(self, name, _text(name, value))
        for name, top in INT_FIELDS.items():
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= top:
                setattr(self, name, _int(name, value))
        for name, rule in _OTHER_RULES:
            value = getattr(self, name)
            fixed = rule(name, value)
            if fixed is not value:
                setattr(self, name, fixed)

    def to_json(self) -> bytes:
        # orjson serialises dataclasses natively; asdict() would deep-copy every field first.
        return orjson.dumps(self, default=str)


FIELD_NAMES = frozenset(f.name for f in fields(UsageRecord))


def _repaired(name: str, reason: str) -> None:
    REPAIRED.labels(reason).inc()
    logger.warning("usage record field %s repaired (%s)", name, reason, extra={"field": name, "reason": reason})


def _text(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        _repaired(name, "type")
        value = "" if value is None else str(value)
    if "\x00" in value:
        _repaired(name, "nul")
        value = value.replace("\x00", "")
    limit = TEXT_LIMITS[name]
    if len(value) > limit:
        _repaired(name, "too_long")
        value = value[:limit]
    return value


def _int(name: str, value: Any) -> Any:
    if value is None and name == "ttft_ms":
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(value)
        except (TypeError, ValueError, OverflowError):
            if name == "status_code":
                raise InvalidRecord(f"{name} is not a number: {value!r}") from None
            _repaired(name, "type")
            return 0
    if value < 0:
        _repaired(name, "negative")
        return 0
    if value > INT_FIELDS[name]:
        _repaired(name, "out_of_range")
        return INT_FIELDS[name]
    return value


def _money(name: str, value: Any) -> Any:
    if not isinstance(value, Decimal):
        try:
            value = Decimal(str(value))
        except (InvalidOperation, ValueError):
            _repaired(name, "type")
            return Decimal(0)
    if not value.is_finite():
        _repaired(name, "not_finite")
        return Decimal(0)
    if value < 0 and name not in SIGNED_MONEY:
        _repaired(name, "negative")
        return Decimal(0)
    if value < -MONEY_MAX:
        _repaired(name, "out_of_range")
        return -MONEY_MAX
    if value > MONEY_MAX:
        _repaired(name, "out_of_range")
        return MONEY_MAX
    if value.as_tuple().exponent < -10:  # type: ignore[operator]
        value = value.quantize(MONEY_QUANTUM)
    return value


def _similarity(name: str, value: Any) -> Any:
    if value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        _repaired(name, "type")
        return None
    if not math.isfinite(number):
        _repaired(name, "not_finite")
        return None
    return value if isinstance(value, float) else number


def _plain_json(value: Any) -> bool:
    """Whether ``value`` surely needs no cleaning: one C-level encoding instead of a walk in Python.

    orjson escapes NUL as ``\\u0000`` (an escaped backslash before ``u0000`` also matches: then the
    walk decides) and refuses keys that are not strings; it writes NaN and infinities as ``null``,
    which is what cleaning them gives.
    """
    try:
        return b"\\u0000" not in orjson.dumps(value)
    except TypeError:
        return False


def _clean_json(value: Any) -> Any:
    """``value`` without NUL characters and non-finite floats (the same object when it has none)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # NaN and infinities are not JSON
    if isinstance(value, list):
        items = [_clean_json(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = [(_clean_json(k) if isinstance(k, str) else str(k), _clean_json(v)) for k, v in value.items()]
        same = all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items(), strict=True))
        return value if same else dict(pairs)
    return value  # numbers, None; a Decimal or datetime is written by orjson as a string


def _json(name: str, value: Any) -> Any:
    kind = JSON_FIELDS[name]
    if not isinstance(value, kind):
        _repaired(name, "type")
        return kind()
    if _plain_json(value):
        return value
    cleaned = _clean_json(value)
    if cleaned is not value:
        _repaired(name, "json_content")
    return cleaned


def _flag(name: str, value: Any) -> Any:
    return value if isinstance(value, bool) else bool(value)


def _id(name: str, value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidRecord(f"{name} is not an id: {value!r}") from None


def _time(name: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidRecord(f"{name} is not a timestamp: {value!r}") from None


Rule = Callable[[str, Any], Any]
# The rules of the fields ``UsageRecord.__post_init__`` does not test inline (texts and counts).
_OTHER_RULES: tuple[tuple[str, Rule], ...] = tuple(
    {
        **dict.fromkeys(MONEY_FIELDS, _money),
        **dict.fromkeys(JSON_FIELDS, _json),
        **dict.fromkeys(BOOL_FIELDS, _flag),
        **dict.fromkeys(ID_FIELDS, _id),
        "started_at": _time,
        "finished_at": _time,
        "cache_similarity": _similarity,
    }.items()
)


def record_from_payload(payload: bytes) -> UsageRecord:
    """Decode one queued record (any version's) into a normalised ``UsageRecord``.

    Raises ``InvalidRecord`` when the payload is not a record at all or lacks what a
    usage row cannot do without.
    """
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRecord("not a JSON object")
    return record_from_fields(data)


def record_from_fields(data: Mapping[str, Any]) -> UsageRecord:
    """A normalised ``UsageRecord`` from decoded fields: unknown ones dropped, the rest repaired."""
    unknown = data.keys() - FIELD_NAMES
    for name in sorted(unknown):
        _repaired(name, "unknown_field")
    known = {name: value for name, value in data.items() if name in FIELD_NAMES}
    missing = [name for name in REQUIRED if known.get(name) in (None, "")]
    if missing:
        raise InvalidRecord(f"missing {', '.join(missing)}")
    try:
        return UsageRecord(**known)
    except TypeError as exc:  # e.g. a field of the wrong shape for a rule that cannot repair it
        raise InvalidRecord(str(exc)) from None


def event_fields(record: UsageRecord) -> dict[str, Any]:
    """The ``UsageEvent`` constructor arguments for a normalised record."""
    return {name: getattr(record, name) for name in FIELD_NAMES}
