"""Atomic, increasing integer ids (spec §1.2: every entity has one; job ids order the queue)."""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from .base import TableMeta, table


class Counter(Model):
    class Meta(TableMeta):
        table_name = table("counters")

    name = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)


def next_id(name: str) -> int:
    """The next id of sequence ``name``; one atomic UpdateItem, never reused."""
    counter = Counter(name)
    counter.update(actions=[Counter.value.add(1)])
    return int(counter.value)
