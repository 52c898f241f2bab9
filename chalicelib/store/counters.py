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
    # "job" only: the queue generation, raised each time a job is put in the queue while runners
    # are online (see services/runners.py: a runner that finishes looks at the queue only if it
    # moved on since the runner was given its job)
    generation = NumberAttribute(null=True)

    @property
    def generation_or_zero(self) -> int:
        return int(self.generation or 0)


JOB = "job"


def next_id(name: str) -> int:
    """The next id of sequence ``name``; one atomic UpdateItem, never reused."""
    return int(allocate(name).value)


def allocate(name: str) -> Counter:
    """The counter right after taking the next id of sequence ``name`` (one UpdateItem)."""
    counter = Counter(name)
    counter.update(actions=[Counter.value.add(1)])
    return counter


def raise_generation(name: str) -> None:
    Counter(name).update(actions=[Counter.generation.add(1)])
