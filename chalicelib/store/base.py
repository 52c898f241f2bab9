"""Shared PynamoDB table settings.

Table names come from the environment when the model class is created (PynamoDB reads
``Meta.table_name`` then), so ``WISP_TABLE_PREFIX`` must be set before ``chalicelib.store`` is
imported. Every table is on-demand; its key schema lives in the model, and ``bootstrap`` and the
deploy template are both derived from these models.
"""
from __future__ import annotations

from datetime import datetime, timezone

import random
from typing import Any, TypeVar

from pynamodb.attributes import UTCDateTimeAttribute
from pynamodb.models import Model

from ..settings import environment

_env = environment()
M = TypeVar("M", bound=Model)


def table(name: str) -> str:
    return f"{_env.table_prefix}-{name}"


class TableMeta:
    region = _env.region
    host = _env.endpoint_url
    billing_mode = "PAY_PER_REQUEST"
    max_retry_attempts = 4


CONFLICT_ATTEMPTS = 5


def conflict_pause(attempt: int) -> float:
    """Seconds to wait before trying again a write that met a transaction (random, growing)."""
    return random.uniform(0.005, 0.02) * 2 ** attempt


def retry_write_conflicts(response: Any = None, attempts: int = 1, **_kw: Any) -> float | None:
    """botocore ``needs-retry`` handler: a single-item write that met a transaction in progress on
    its item (``TransactionConflictException``; botocore does not retry it) is tried again after a
    short random pause. The item's transactions are short, so a few tries suffice."""
    if response is None:
        return None
    parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
    code = (parsed or {}).get("Error", {}).get("Code")
    if code == "TransactionConflictException" and attempts < CONFLICT_ATTEMPTS:
        return conflict_pause(attempts)
    return None


def _install_conflict_retry() -> None:
    """Every botocore session created from now on (PynamoDB makes one per thread, boto3 one per
    session) registers ``retry_write_conflicts``; no client exists yet when this runs."""
    from botocore import handlers

    entry = ("needs-retry.dynamodb", retry_write_conflicts)
    if entry not in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.append(entry)


_install_conflict_retry()


def now() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(UTCDateTimeAttribute):
    """UTC timestamps, always timezone-aware."""


def transact_write(**kwargs: object) -> "TransactWrite":
    """A PynamoDB write transaction on the connection PynamoDB already holds (no new client)."""
    from pynamodb.transactions import TransactWrite

    from .counters import Counter

    return TransactWrite(connection=Counter._get_connection().connection, **kwargs)  # type: ignore[arg-type]


def get_together(*wanted: tuple[type[M], object], consistent: bool = False) -> list[M | None]:
    """Items of several tables by hash key in one BatchGetItem; None for each that does not exist.

    Billed like separate GetItems (0.5 RRU per 4 KB eventually consistent, 1 strongly), unlike
    TransactGetItems (2 RRU per item). Keys DynamoDB leaves unprocessed (throttling) are asked
    for again, a few times, then read one by one."""
    from .counters import Counter

    client = Counter._get_connection().connection.client
    requests: dict[str, dict] = {}
    slots: dict[tuple[str, str], int] = {}
    key_names: dict[str, str] = {}
    for index, (model, hash_key) in enumerate(wanted):
        key = model.get_operation_kwargs_from_class(hash_key)  # type: ignore[arg-type]  # any key type
        table = key["TableName"]
        key_names[table] = model._hash_key_attribute().attr_name
        requests.setdefault(table, {"Keys": [], "ConsistentRead": consistent})["Keys"].append(key["Key"])
        slots[(table, repr(key["Key"][key_names[table]]))] = index

    def slot(table: str, item: dict[str, Any]) -> int | None:
        return slots.get((table, repr(item.get(key_names[table]))))

    found: list = [None] * len(wanted)
    for _attempt in range(3):
        response = client.batch_get_item(RequestItems=requests)
        for table, items in response.get("Responses", {}).items():
            for item in items:
                at = slot(table, item)
                if at is not None:
                    found[at] = wanted[at][0].from_raw_data(item)
        requests = response.get("UnprocessedKeys") or {}
        if not requests:
            return found
    for table, pending in requests.items():  # still unprocessed: one by one
        for key in pending["Keys"]:
            at = slot(table, key)
            if at is None:
                continue
            model, hash_key = wanted[at]
            try:
                found[at] = model.get(hash_key, consistent_read=consistent)
            except model.DoesNotExist:
                found[at] = None
    return found


from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from pynamodb.transactions import TransactWrite
