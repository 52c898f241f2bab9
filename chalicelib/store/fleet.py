"""What the runner scaling loop (``services/scaling.py``) remembers from one minute to the next.

It lives in the counters table, beside the id counters, so it needs no table of its own:

* the row ``fleet`` (``FleetState``): the demand of the last minutes (scale-in waits for a whole
  grace window of lower demand), since when tasks have been seen that are not registered yet, and
  up to which moment GPU time has been counted. It is saved with a version check, so two sweeps at
  the same time (a retried invocation) never both count the same minutes;
* one ``Counter`` row per UTC day, ``gpu-seconds:YYYY-MM-DD``: the runner task-seconds of that day,
  raised with an atomic ADD.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from .base import TableMeta, get_together, table
from .counters import Counter

FLEET = "fleet"
GPU_SECONDS = "gpu-seconds:"


class FleetState(Model):
    """The ``fleet`` row of the counters table (same key schema as ``Counter``; not a table of its own,
    so it is not in ``ALL_MODELS``)."""

    class Meta(TableMeta):
        table_name = table("counters")

    name = UnicodeAttribute(hash_key=True)
    demand = JSONAttribute(null=True)  # [[epoch seconds, runners needed], ...], oldest first
    observed_since = NumberAttribute(null=True)  # start of the unbroken run of observations
    starting_since = NumberAttribute(null=True)  # unregistered tasks seen without a break since then
    counted_until = NumberAttribute(null=True)  # GPU time is counted up to this moment
    version = VersionAttribute()


@dataclass(frozen=True)
class FleetRecord:
    """The remembered state as plain values; ``version`` is the row's, for the conditional save."""

    demand: tuple[tuple[float, int], ...] = ()
    observed_since: float | None = None
    starting_since: float | None = None
    counted_until: float | None = None
    version: int | None = field(default=None, compare=False)


def gpu_key(day: str) -> str:
    return f"{GPU_SECONDS}{day}"


def load(day: str) -> tuple[FleetRecord, float]:
    """The fleet row and the GPU seconds counted on ``day`` (YYYY-MM-DD), in one strongly
    consistent BatchGetItem."""
    row, usage = get_together((FleetState, FLEET), (Counter, gpu_key(day)), consistent=True)
    seconds = float(usage.value or 0) if isinstance(usage, Counter) else 0.0
    if not isinstance(row, FleetState):
        return FleetRecord(), seconds
    demand = tuple((float(t), int(n)) for t, n in (row.demand or []))
    return FleetRecord(
        demand=demand,
        observed_since=_float(row.observed_since),
        starting_since=_float(row.starting_since),
        counted_until=_float(row.counted_until),
        version=int(row.version) if row.version is not None else None,
    ), seconds


def save(record: FleetRecord) -> bool:
    """Write ``record`` if the row still has the version it was read with (one PutItem).
    False when another sweep saved first; its state then stands."""
    row = FleetState(
        FLEET,
        demand=[[t, n] for t, n in record.demand],
        observed_since=record.observed_since,
        starting_since=record.starting_since,
        counted_until=record.counted_until,
    )
    if record.version is not None:
        row.version = record.version  # the save then requires this version; none: the row must not exist
    try:
        row.save()
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def add_gpu_seconds(day: str, seconds: float) -> None:
    """Add ``seconds`` of runner task time to ``day`` (one UpdateItem with ADD)."""
    Counter(gpu_key(day)).update(actions=[Counter.value.add(int(round(seconds)))])


def gpu_seconds(day: str) -> float:
    """Runner task-seconds counted on ``day`` (one GetItem; 0 if none)."""
    try:
        return float(Counter.get(gpu_key(day), consistent_read=True).value or 0)
    except Counter.DoesNotExist:
        return 0.0


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)
