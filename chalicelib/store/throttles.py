"""Attempt counters for the application's throttles (``services/throttles.py``).

One item per (rule, subject, window): an atomic ADD counts an attempt, and DynamoDB's TTL removes
the item once its window is over (``expires_at_epoch``; TTL is lazy, so readers compare the
window themselves: the window start is part of the key). Subjects arrive hashed: no address or
e-mail is stored here.
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.constants import ALL_NEW
from pynamodb.models import Model

from .base import TableMeta, table


class Throttle(Model):
    class Meta(TableMeta):
        table_name = table("throttles")

    key = UnicodeAttribute(hash_key=True)  # "<rule>:<subject hash>:<window start>"
    hits = NumberAttribute(default=0)
    expires_at_epoch = NumberAttribute()  # DynamoDB TTL


def hit(key: str, *, expires_at: int) -> int:
    """Count one attempt (one UpdateItem); the count after it."""
    data = Throttle._get_connection().update_item(
        key, actions=[Throttle.hits.add(1), Throttle.expires_at_epoch.set(expires_at)], return_values=ALL_NEW)
    return int(data["Attributes"]["hits"]["N"])


def hits(key: str) -> int:
    """Attempts counted so far (one strongly consistent GetItem; 0 if none)."""
    try:
        return int(Throttle.get(key, consistent_read=True).hits or 0)
    except Throttle.DoesNotExist:
        return 0
