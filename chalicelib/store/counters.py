"""Atomic, increasing integer ids (spec §1.2: every entity has one; job ids order the queue)."""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from .base import TableMeta, table


class Counter(Model):
    class Meta(TableMeta):
        table_name = table("counters")

    name = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)
    # "job" only: the queue generation, raised each time a job is put in the queue while runners
    # are online (see services/assignment.py: a runner that finishes looks at the queue only if it
    # moved on since the runner was given its job)
    generation = NumberAttribute(null=True)

    @property
    def generation_or_zero(self) -> int:
        return int(self.generation or 0)


JOB = "job"


@dataclass(frozen=True)
class Allocated:
    value: int  # the id just taken
    generation: int  # the queue generation at that moment ("job" only)


def next_id(name: str) -> int:
    """The next id of sequence ``name``; one atomic UpdateItem, never reused."""
    return allocate(name).value


def allocate(name: str) -> Allocated:
    """Take the next id of sequence ``name`` (one UpdateItem), with the counter's generation."""
    counter = Counter(name)
    counter.update(actions=[Counter.value.add(1)])
    return Allocated(int(counter.value), counter.generation_or_zero)


def current(name: str) -> int:
    """The last id sequence ``name`` handed out (one eventually consistent GetItem; 0 if none)."""
    try:
        return int(Counter.get(name).value or 0)
    except Counter.DoesNotExist:
        return 0
