"""The ``runner`` and ``runner+S`` gates (spec §1.4), in the spec's order:

no Bearer → 401; unknown runner token → 401 (both with ``WWW-Authenticate: Bearer``); missing
``session_token`` → 422; runner not online → 403; session mismatch → 403.

For ``runner+S`` the check is one conditional UpdateItem that also extends the runner's 60 s
lease, so an idle heartbeat costs a single DynamoDB request, and that carries the route's own
change to the runner row where it declares one (``lease_work``: a heartbeat's progress, the
"processing" mark of retrieve_job_audio), so those calls cost one request as well. The row is read
only when the lease cannot be extended, to tell the caller which check failed. A route whose own
transaction rewrites the row (``submit_job_result``: ``runners.DEFER_LEASE``) is authenticated by
reading the row instead, and its transaction extends the lease on the same conditions.
"""
from __future__ import annotations

from typing import Any

from .. import errors
from ..store import runners as store
from . import runners, tokens

_WWW = {"WWW-Authenticate": "Bearer"}
MAX_SECRET = 512


def _bearer(headers: Any) -> str | None:
    from ..auth import bearer_token

    value = bearer_token(headers)
    return value if value else None


def check(call: Any, with_session: bool) -> None:
    """Authenticate a runner call; sets ``call.principal`` to a ``RunnerPrincipal``."""
    secret = _bearer(call.request.headers)
    if secret is None:
        raise errors.Unauthorized("Not authenticated", headers=_WWW)
    if len(secret) > MAX_SECRET:
        raise errors.Unauthorized("Invalid runner token", headers=_WWW)
    token_hash = tokens.hash_secret(secret)
    if not with_session:
        runner = store.get(token_hash)
        if runner is None:
            raise errors.Unauthorized("Invalid runner token", headers=_WWW)
        call.principal = runners.RunnerPrincipal(runner)
        return
    params = call.request.query_params or {}
    session = params.get("session_token")
    if session is None:
        if store.get(token_hash) is None:
            raise errors.Unauthorized("Invalid runner token", headers=_WWW)
        raise errors.ValidationFailed(
            [{"type": "missing", "loc": ["query", "session_token"], "msg": "Field required", "input": None}]
        )
    session_hash = tokens.hash_secret(session[:MAX_SECRET])
    if call.lease_work is runners.DEFER_LEASE:
        principal = runners.read_lease(token_hash, session_hash)
    else:
        principal = runners.refresh_lease(token_hash, session_hash, call.lease_work)
    if principal is not None:
        call.principal = principal
        return
    runner = store.get(token_hash)
    if runner is None:
        raise errors.Unauthorized("Invalid runner token", headers=_WWW)
    if not runners.is_live(runner):
        runners.forget_expired(runner)
        raise errors.Forbidden("This runner is not registered as online")
    raise errors.Forbidden("Invalid session token for this runner")
