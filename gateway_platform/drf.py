"""Shared plumbing of the management API (``/api/``) that settings refer to.

``SearchFilter`` is DRF's, answering a bad search term in the usual error shape;
``SlugRelatedField`` is DRF's, refusing NUL bytes (PostgreSQL text cannot hold them).

``document_errors`` is a drf-spectacular post-processing hook: DRF answers
errors in its own shape — ``{"detail": "..."}`` for 401/403/404/405 and
``{"field": ["message", ...]}`` for validation errors — and the schema says so
for every operation, so clients (and Schemathesis) can rely on it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import filters, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

ERROR_SCHEMA = {
    "type": "object",
    "description": "DRF's error shape.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": "Field name (or `non_field_errors` / `detail`) → messages.",
    "additionalProperties": {},
}


class SearchFilter(filters.SearchFilter):
    """DRF's search, with a bad term (e.g. a NUL byte) reported under its parameter like any field error."""

    def get_search_terms(self, request: Request) -> list[str]:
        try:
            return super().get_search_terms(request)
        except ValidationError as exc:  # DRF raises a bare list here; the API's shape is field → messages
            raise ValidationError({self.search_param: exc.detail}) from exc


class SlugRelatedField(serializers.SlugRelatedField):
    """DRF's slug lookup, refusing text PostgreSQL cannot hold (a NUL byte) as invalid instead of a 500."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_VALIDATION_REF = {"$ref": "#/components/schemas/ValidationError"}


def _response(description: str, ref: dict[str, str]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add DRF's 400/401/403/404 answers to every operation of the schema."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    schemas.setdefault("ValidationError", VALIDATION_ERROR_SCHEMA)
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            # Writes (deletes too: e.g. a team's last owner cannot be removed) and filtered reads may be refused.
            has_input = method != "get" or any(p.get("in") == "query" for p in operation.get("parameters", []))
            if has_input:
                responses.setdefault("400", _response("Invalid input, or a rule refused the change.", _VALIDATION_REF))
            responses.setdefault("401", _response("Not signed in, or the token is invalid.", _ERROR_REF))
            responses.setdefault("403", _response("Your role does not allow this.", _ERROR_REF))
            # Also on lists: a page number past the end is a 404 too.
            responses.setdefault("404", _response("No such object (or not one you may see), or page.", _ERROR_REF))
    return result
