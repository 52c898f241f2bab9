"""Signed, expiring e-mail link tokens (activation, e-mail change, password reset; spec §8).

JWTs signed with the instance's secret key (HS256). They are not stored: a reset link can be used
again within its lifetime, an activation link is useless once the account is verified.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from .. import errors
from ..settings import get_settings
from ..store.base import now

LIFETIME = timedelta(hours=24)
ACTIVATION = "activation"  # payload: old_email, new_email (None for a plain activation)
PASSWORD_RESET = "password-reset"  # payload: email


def make(purpose: str, payload: dict[str, Any]) -> str:
    import jwt

    issued = now()
    claims = {**payload, "purpose": purpose, "iat": issued, "exp": issued + LIFETIME}
    return jwt.encode(claims, get_settings().secret_key, algorithm="HS256")


def read(token: str, purpose: str) -> dict[str, Any]:
    """The payload of a valid, unexpired token for ``purpose``; 401 otherwise."""
    import jwt

    try:
        claims = jwt.decode(token, get_settings().secret_key, algorithms=["HS256"],
                            options={"require": ["exp", "iat", "purpose"]})
    except jwt.PyJWTError:
        raise errors.Unauthorized("This link is invalid or has expired") from None
    if claims.get("purpose") != purpose:
        raise errors.Unauthorized("This link is invalid or has expired")
    return claims
