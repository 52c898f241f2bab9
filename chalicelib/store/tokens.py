"""User tokens, keyed by the hash of their secret (the secret itself is never stored)."""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import BooleanAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from .base import TableMeta, UTCDateTime, now, table


class TokensByUser(GlobalSecondaryIndex["Token"]):
    class Meta:
        index_name = "by-user"
        projection = AllProjection()

    user_id = NumberAttribute(hash_key=True)
    id = NumberAttribute(range_key=True)


class Token(Model):
    class Meta(TableMeta):
        table_name = table("tokens")

    token_hash = UnicodeAttribute(hash_key=True)
    id = NumberAttribute()
    user_id = NumberAttribute()
    name = UnicodeAttribute()
    explicit = BooleanAttribute(default=False)  # API token (never expires, never admin)
    admin_privileges = BooleanAttribute(default=False)
    expires_at = UTCDateTime(null=True)
    last_usage = UTCDateTime(default=now)
    # the event-stream connections (SSE pollers) that use this token: connection id → epoch
    # seconds it was last seen (refreshed every few minutes, not on every poll); see
    # services/event_stream.py
    pollers: MapAttribute[str, Any] = MapAttribute(null=True)
    # an OIDC session's refresh token from its IdP, encrypted (chalicelib/sealing.py); deleted with the token
    idp_refresh_token = UnicodeAttribute(null=True)

    by_user = TokensByUser()


def delete_of_user(user_id: int, *, keep_id: int | None = None) -> int:
    """Delete every token row of the user except the one with id ``keep_id``; returns how many.

    Reads only the keys from the by-user index, page by page, and deletes in BatchWriteItem
    calls of 25 (PynamoDB retries unprocessed items), so the cost grows with the number of
    tokens in 25-item steps and memory stays at one page whatever the count. The index is
    eventually consistent: a token written a moment before may be missed.
    """
    deleted = 0
    with Token.batch_write() as batch:
        for token in Token.by_user.query(user_id, attributes_to_get=["token_hash", "id"]):
            if keep_id is not None and int(token.id) == keep_id:
                continue
            batch.delete(token)
            deleted += 1
    return deleted
