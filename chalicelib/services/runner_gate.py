"""The ``runner`` and ``runner+S`` gates (spec §1.4), in the spec's order:

no Bearer → 401; unknown runner token → 401 (both with ``WWW-Authenticate: Bearer``); missing
``session_token`` → 422; runner not online → 403; session mismatch → 403.

For ``runner+S`` the check is the lease renewal (``leases.renew``): one conditional UpdateItem that
also makes the route's own change to the runner row where it declares one (``work``), so an idle
heartbeat costs a single request. The row is read only when the lease cannot be extended, to tell
the caller which check failed.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..auth import Admitted, bearer_token
from ..store import runners as store
from ..store.lifecycle import LeaseWork
from . import leases, protocol, tokens

_WWW = {"WWW-Authenticate": "Bearer"}
MAX_SECRET = 512


@dataclass(frozen=True)
class RunnerGate:
    """``runner`` (token only) or ``runner+S`` (token and session); ``work`` derives the route's
    own change to the runner row from the JSON body, made by the authenticating update."""

    with_session: bool
    work: Callable[[Any], LeaseWork | None] | None = None

    @property
    def name(self) -> str:
        return "runner+S" if self.with_session else "runner"

    def check(self, request: Any, body: Any) -> Admitted:
        return Admitted(authenticate(request.headers, request.query_params or {}, self.with_session,
                                     self.work(body) if self.work is not None else None))


def authenticate(headers: Any, params: Any, with_session: bool, work: LeaseWork | None) -> leases.RunnerPrincipal:
    secret = bearer_token(headers) or None
    if secret is None:
        raise errors.Unauthorized("Not authenticated", headers=_WWW)
    if len(secret) > MAX_SECRET:
        raise errors.Unauthorized("Invalid runner token", headers=_WWW)
    token_hash = tokens.hash_secret(secret)
    if not with_session:
        runner = store.get(token_hash)
        if runner is None:
            raise errors.Unauthorized("Invalid runner token", headers=_WWW)
        return leases.RunnerPrincipal(runner)
    session = params.get("session_token")
    if session is None:
        if store.get(token_hash) is None:
            raise errors.Unauthorized("Invalid runner token", headers=_WWW)
        raise errors.ValidationFailed(
            [{"type": "missing", "loc": ["query", "session_token"], "msg": "Field required", "input": None}]
        )
    session_hash = tokens.hash_secret(session[:MAX_SECRET])
    if work is leases.DEFER:
        principal = leases.read(token_hash, session_hash)
    else:
        principal = leases.renew(token_hash, session_hash, work)
    if principal is not None:
        return principal
    runner = store.get(token_hash)
    if runner is None:
        raise errors.Unauthorized("Invalid runner token", headers=_WWW)
    if not leases.is_live(runner):
        protocol.forget_expired(runner)
        raise errors.Forbidden("This runner is not registered as online")
    raise errors.Forbidden("Invalid session token for this runner")
