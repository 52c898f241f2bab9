"""Per-user job event log behind /api/jobs/events (spec §7), expiring through DynamoDB TTL.

Each event has a per-user increasing sequence number (its SSE ``id:``), so a client that
reconnects with ``Last-Event-ID`` gets every later event. Rows expire after ``RETENTION``.
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from .base import TableMeta, table


class JobEvent(Model):
    class Meta(TableMeta):
        table_name = table("events")

    user_id = NumberAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    event = UnicodeAttribute()  # job_created | job_updated | job_deleted
    job_id = NumberAttribute()
    expires_at_epoch = NumberAttribute()  # DynamoDB TTL attribute (seconds since epoch)
