"""User tokens: issue, look up, rotate, revoke. Only hashes are stored (spec §1.3).

A user token's secret is ``<user id>.<43 random characters>``. The id is not a credential (the
whole secret is hashed and looked up), it only lets authentication fetch the token and its user
in one BatchGetItem instead of two reads one after the other. Secrets without the prefix
(issued before it existed) still work, with two reads.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action


from ..settings import get_settings
from . import limits
from ..store.base import get_together, now, transact_write
from ..store.counters import next_id
from ..store import tokens as store_tokens
from ..store.tokens import Token
from ..store.users import User

TOUCH_INTERVAL = timedelta(minutes=1)  # last_usage is refreshed at most once a minute per token


def new_secret() -> str:
    """32 random bytes, URL-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def new_user_secret(user_id: float) -> str:  # float: a NumberAttribute (User.id) as mypy sees it
    return f"{int(user_id)}.{new_secret()}"


def user_hint(secret: str) -> int | None:
    """The user id a secret names (None for unprefixed or malformed secrets)."""
    head, dot, _rest = secret.partition(".")
    if not dot or not head.isdigit() or len(head) > 15:
        return None
    return int(head)


def hash_secret(secret: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode("utf-8")).digest()).rstrip(b"=").decode("ascii")


@dataclass
class Issued:
    token: Token
    secret: str


def session_lifetime() -> timedelta:
    return timedelta(minutes=get_settings().security.tokens.session_expiration_time_minutes)


def issue_session(user: User, *, name: str, admin: bool, idp_refresh_token: str | None = None) -> Issued:
    """A login session token (cookie only), admin only if the login asked for it; an OIDC login
    links its IdP's (encrypted) refresh token to it."""
    secret = new_user_secret(user.id)
    token = Token(
        hash_secret(secret), id=next_id("token"), user_id=user.id, name=name, explicit=False,
        admin_privileges=admin, expires_at=now() + session_lifetime(), last_usage=now(),
        idp_refresh_token=idp_refresh_token,
    )
    token.save()
    return Issued(token, secret)


def issue_api_token(user: User, *, name: str) -> Issued:
    """A long-lived API token: never expires, never admin (400 past ``limits.api_tokens_per_user``)."""
    limits.check_api_tokens(int(user.id))
    secret = new_user_secret(user.id)
    token = Token(
        hash_secret(secret), id=next_id("token"), user_id=user.id, name=name, explicit=True,
        admin_privileges=False, expires_at=None, last_usage=now(),
    )
    token.save()
    return Issued(token, secret)


def find(secret: str) -> Token | None:
    """The live token for ``secret``, or None if unknown or expired."""
    found = find_with_user(secret, with_user=False)
    return found[0] if found else None


def find_with_user(secret: str, *, with_user: bool = True) -> tuple[Token, User | None] | None:
    """The live token for ``secret`` and (``with_user``) its user, None if the user is gone; None
    if the token is unknown or expired. One request for prefixed secrets, else one per item."""
    if not secret or len(secret) > 512:
        return None
    token_hash = hash_secret(secret)
    hint = user_hint(secret) if with_user else None
    user: User | None = None
    if hint is not None:
        found_token, user = _read_pair(token_hash, hint)
        if found_token is None:
            return None
        token = found_token
    else:
        try:
            token = Token.get(token_hash)
        except DoesNotExist:
            return None
    if token.expires_at is not None and token.expires_at <= now():
        return None
    if with_user and (user is None or int(user.id) != int(token.user_id)):
        try:
            user = User.get(token.user_id)
        except DoesNotExist:
            user = None
    return token, user


def _read_pair(token_hash: str, user_id: int) -> tuple[Token | None, User | None]:
    """Token and user in one BatchGetItem (eventually consistent, as single reads would be)."""
    token, user = get_together((Token, token_hash), (User, user_id))
    return token, user  # type: ignore[return-value]


def needs_rotation(token: Token) -> bool:
    if token.explicit or token.expires_at is None:
        return False
    window = timedelta(minutes=get_settings().security.tokens.rolling_session_before_expiration_minutes)
    return token.expires_at - now() < window


def rotate(token: Token) -> str | None:
    """Give the token record a new secret and a fresh expiry; the old secret stops working at once.

    Returns the new secret, or None if a concurrent request rotated it first (the caller then
    keeps its authentication for this request but sets no cookie)."""
    secret = new_user_secret(token.user_id)
    fresh = Token(
        hash_secret(secret), id=token.id, user_id=token.user_id, name=token.name, explicit=token.explicit,
        admin_privileges=token.admin_privileges, expires_at=now() + session_lifetime(), last_usage=now(),
        pollers=token.pollers,  # the tab's open event streams send the new cookie from now on
        idp_refresh_token=token.idp_refresh_token,
    )
    try:
        with transact_write() as tx:
            tx.delete(token, condition=Token.token_hash.exists())
            tx.save(fresh, condition=Token.token_hash.does_not_exist())
    except TransactWriteError:
        return None
    return secret


def touch(token: Token) -> None:
    """Record a successful use (user retention measures inactivity from this)."""
    if token.last_usage is not None and now() - token.last_usage < TOUCH_INTERVAL:
        return
    try:
        token.update(actions=[Token.last_usage.set(now())], condition=Token.token_hash.exists())
    except UpdateError:
        pass  # revoked concurrently; this request was authenticated before that


def pollers_of(token: Token) -> dict[str, int]:
    """The event-stream connections recorded on ``token``: connection id → epoch seconds last seen."""
    raw = token.pollers.as_dict() if token.pollers is not None else {}
    return {str(conn): int(seen) for conn, seen in raw.items()}


def record_pollers(token: Token, pollers: dict[str, int], *, opened: bool) -> None:
    """Store the token's event-stream connections (one UpdateItem). A connection that just
    ``opened`` also counts as a use of the token (``last_usage``), once, as a stream that is
    authenticated once would; its later polls do not."""
    actions: list[Action] = [Token.pollers.set(pollers)]
    if opened:
        actions.append(Token.last_usage.set(now()))
    try:
        token.update(actions=actions, condition=Token.token_hash.exists())
    except UpdateError:
        pass  # rotated or revoked meanwhile: the next poll records itself on the current token


def tokens_of(user_id: int) -> list[Token]:
    return list(Token.by_user.query(user_id))


def live_tokens_of(user_id: int) -> list[Token]:
    """Non-expired tokens, most recently used first."""
    moment = now()
    live = [t for t in tokens_of(user_id) if t.expires_at is None or t.expires_at > moment]
    return sorted(live, key=lambda t: t.last_usage or datetime.min, reverse=True)


def revoke(token: Token) -> None:
    token.delete()


def revoke_by_id(user_id: int, token_id: int) -> None:
    """Delete the user's token with that id; unknown ids and other users' tokens are ignored."""
    for token in Token.by_user.query(user_id, Token.id == token_id):
        token.delete()


def revoke_all(user_id: int) -> None:
    """Delete every token of the user, sessions and API tokens alike."""
    store_tokens.delete_of_user(user_id)


def revoke_all_but(token: Token) -> str | None:
    """Delete every other token of ``token``'s user and give ``token`` itself a new secret.

    What a password change does to the credentials: whoever held another session or an API token
    is out; the session that made the change stays signed in. Returns the new secret for the
    ``token`` cookie, or None when ``token`` keeps its secret: an API token (its secret is only
    ever shown once, in a response body; a cookie would not reach the script), or a session that
    a concurrent request of the same browser rotated first (that response carries the cookie).
    """
    store_tokens.delete_of_user(int(token.user_id), keep_id=int(token.id))  # by id: a rotation keeps it
    if token.explicit:
        return None
    return rotate(token)
