"""Signed, expiring e-mail link tokens (activation, e-mail change, password reset; spec §8).

JWTs signed with the instance's secret key (HS256), valid 24 hours. Each link works once, and
none of them is stored; each names the state of the account it changes, and that state changes
when the link is used:

* activation: the account id and its address. Refused once the account is verified (400, as the
  spec answers a second activation), and for a newer account that took the address since.
* e-mail change: the account id, the address it changes from and ``ev``, the account's count of
  address changes (``User.email_changes``) when the link was mailed. Completing a change adds one,
  so the link is spent, and so is every other change link mailed before it.
* password reset: the account id and ``pw``, a keyed fingerprint of the password hash. Setting a
  password writes a new hash (argon2 salts every hash), so the link dies with its first use, and
  also when the password changes any other way.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Any

from .. import errors
from ..settings import get_settings
from ..store.base import now

LIFETIME = timedelta(hours=24)
ACTIVATION = "activation"  # payload: old_email, new_email (None for a plain activation), uid, ev (changes)
PASSWORD_RESET = "password-reset"  # payload: email, uid, pw


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


def password_fingerprint(password_hash: str | None) -> str:
    """A keyed digest of the stored password hash (22 characters). Keyed, because the token's
    payload is readable by whoever holds the link, and the hash is nobody's business."""
    digest = hmac.new(get_settings().secret_key, b"password-reset\0" + (password_hash or "").encode("utf-8"),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")
