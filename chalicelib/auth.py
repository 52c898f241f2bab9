"""Access gates of spec §1.4, checked in the spec's order; the first failure decides.

Gates: ``user``, ``user+V`` (verified), ``user+V+T`` (verified and current ToS accepted),
``admin`` (verified, admin token), ``local`` (local, not provisioned), ``user-not-provisioned``,
``runner`` and ``runner+S`` (runner token; plus online and matching ``session_token``: those live
in ``services/runner_gate.py``, which uses this module's credential parsing).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import errors
from .services import tokens
from .settings import get_settings
from .store.tokens import Token
from .store.users import User

USER_GATES = {"user", "user+V", "user+V+T", "admin", "local", "user-not-provisioned"}


@dataclass
class Principal:
    """An authenticated user request."""

    user: User
    token: Token

    @property
    def is_admin(self) -> bool:
        return bool(self.token.admin_privileges and not self.token.explicit and self.user.is_admin)


def bearer_token(headers: Any) -> str | None:
    """The Bearer token if an Authorization header with that scheme is present, else None."""
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None  # another scheme counts as absent
    return credentials.strip()


def cookie_token(headers: Any) -> str | None:
    """The ``token`` cookie. Parsed leniently: a malformed cookie elsewhere must not hide ours."""
    raw = headers.get("cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == "token":
            return value.strip().strip('"') or None
    return None


def session_cookie(secret: str) -> str:
    minutes = get_settings().security.tokens.session_expiration_time_minutes
    return f"token={secret}; Max-Age={minutes * 60}; Path=/; SameSite=lax"


CLEAR_COOKIE = 'token=""; Path=/; SameSite=lax'


@dataclass(frozen=True)
class Admitted:
    """What a gate lets through: the caller, and a new session cookie when it rotated the session."""

    principal: Any
    set_cookie: str | None = None


@dataclass(frozen=True)
class UserGate:
    """A user gate; ``renew=False`` (the event stream's polls) leaves the session as it is: no
    rotation, no new expiry, no ``last_usage`` write, so a tab that only listens does not keep
    its session alive."""

    name: str
    renew: bool = True

    def __post_init__(self) -> None:
        if self.name not in USER_GATES:
            raise ValueError(f"unknown gate {self.name}")

    def check(self, request: Any, _body: Any) -> Admitted:
        return authenticate_user(request.headers, self.name, renew=self.renew)


def authenticate_user(headers: Any, gate: str, *, renew: bool = True) -> Admitted:
    bearer = bearer_token(headers)
    secret = bearer if bearer is not None else cookie_token(headers)
    if not secret:
        raise errors.Unauthorized("Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    found = tokens.find_with_user(secret)
    token, user = found if found is not None else (None, None)
    if token is None or user is None:
        raise errors.Unauthorized("Invalid or expired token, please log in again",
                                  headers={"WWW-Authenticate": "Bearer"})
    principal = Principal(user=user, token=token)
    settings = get_settings()
    if gate in ("user+V", "user+V+T", "admin") and not user.is_verified:
        raise errors.Forbidden("Your email address is not verified yet; please confirm it with the link we sent you")
    if gate == "admin" and not principal.is_admin:
        raise errors.Forbidden("This requires a login with admin privileges")
    if gate == "user+V+T":
        accepted = user.accepted_tos or {}
        for tos_id, tos in settings.terms_of_services.items():
            if int(accepted.get(str(tos_id), 0)) < tos.version:
                raise errors.Forbidden(f"Please accept the current version of the terms of service '{tos.name}' first")
    if gate in ("user-not-provisioned", "local") and user.provision_number is not None:
        raise errors.Forbidden("This account is managed by the server's configuration and cannot be changed here")
    cookie = _renew(principal) if renew else None
    if gate == "local" and user.user_type != "local":
        raise errors.Forbidden("Only local accounts can do this")
    return Admitted(principal, cookie)


def _renew(principal: Principal) -> str | None:
    """A session in its rolling window gets a new secret and lifetime (returns its cookie); any
    token otherwise records the use (``last_usage``, at most once a minute)."""
    token = principal.token
    if tokens.needs_rotation(token):
        new_secret = tokens.rotate(token)
        if new_secret is not None:
            principal.token = tokens.find(new_secret) or token
            return session_cookie(new_secret)
    else:
        tokens.touch(token)
    return None
