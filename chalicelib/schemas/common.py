"""Models shared by every section: errors, e-mail and password rules."""
from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class ErrorResponse(BaseModel):
    detail: str


class ValidationError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class HTTPValidationError(BaseModel):
    detail: list[ValidationError] = []


class RequestModel(BaseModel):
    """Request bodies ignore unknown extra fields (spec §1.2)."""

    model_config = ConfigDict(extra="ignore")


def _without_null_defaults(schema: dict[str, Any]) -> None:
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class FormModel(RequestModel):
    """Form bodies (``application/x-www-form-urlencoded``): their schema names no ``null`` defaults.

    A form cannot send null. Swagger UI pre-fills each form field with its default as text, so a
    documented ``default: null`` became the word "null" in the request (a 422 for ``grant_type``).
    Upstream's document has no null defaults for its forms either.
    """

    model_config = ConfigDict(extra="ignore", json_schema_extra=_without_null_defaults)


def normalise_email(value: str) -> str:
    """Syntax check and normalisation with email-validator (no DNS): domain lower-cased/IDNA,
    local part as typed. Parsed per call (upstream bug §12.17 kept the domain in shared state)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[1]


EmailValidated = Annotated[str, Field(max_length=254), AfterValidator(normalise_email)]

_POLICY = (
    (re.compile(r"[A-Z]"), "an uppercase letter"),
    (re.compile(r"[a-z]"), "a lowercase letter"),
    (re.compile(r"[0-9]"), "a digit"),
    (re.compile(r"[^A-Za-z0-9]"), "a character that is not an ASCII letter or digit"),
)


def check_password_policy(value: str) -> str:
    """At least 12 characters with an uppercase and a lowercase letter, a digit and a special character."""
    missing = [label for pattern, label in _POLICY if not pattern.search(value)]
    if len(value) < 12:
        missing.insert(0, "at least 12 characters")
    if missing:
        raise ValueError("Password must contain " + ", ".join(missing))
    return value


PasswordValidated = Annotated[str, Field(max_length=1024), AfterValidator(check_password_policy)]
