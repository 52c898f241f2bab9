"""Shared PynamoDB table settings.

Table names come from the environment when the model class is created (PynamoDB reads
``Meta.table_name`` then), so ``WISP_TABLE_PREFIX`` must be set before ``chalicelib.store`` is
imported. Every table is on-demand; its key schema lives in the model, and ``bootstrap`` and the
deploy template are both derived from these models.
"""
from __future__ import annotations

from datetime import datetime, timezone

from pynamodb.attributes import UTCDateTimeAttribute

from ..settings import environment

_env = environment()


def table(name: str) -> str:
    return f"{_env.table_prefix}-{name}"


class TableMeta:
    region = _env.region
    host = _env.endpoint_url
    billing_mode = "PAY_PER_REQUEST"
    max_retry_attempts = 4


def now() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(UTCDateTimeAttribute):
    """UTC timestamps, always timezone-aware."""


def transact_write(**kwargs: object) -> "TransactWrite":
    """A PynamoDB write transaction on the connection PynamoDB already holds (no new client)."""
    from pynamodb.transactions import TransactWrite

    from .counters import Counter

    return TransactWrite(connection=Counter._get_connection().connection, **kwargs)  # type: ignore[arg-type]


def transact_get() -> "TransactGet":
    """A PynamoDB read transaction (items of any tables, strongly consistent, one request)."""
    from pynamodb.transactions import TransactGet

    from .counters import Counter

    return TransactGet(connection=Counter._get_connection().connection)  # type: ignore[arg-type]


from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from pynamodb.transactions import TransactGet, TransactWrite
