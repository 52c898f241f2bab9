"""The one-minute sweep (spec §6.4): runners whose lease ran out let go of their jobs (back to the
queue, or failed when aborting or handed out too often), then pending jobs go to idle runners."""
from __future__ import annotations

from ..store import runners as runner_store
from . import assignment, leases


def sweep(*, max_assignments: int = 100) -> dict[str, int]:
    moment = leases.clock()
    released = 0
    for stale in runner_store.expired_before(moment):
        current = runner_store.get(stale.token_hash)
        if current is None or current.online is None or leases.is_live(current, moment):
            continue
        leases.release(current, go_offline=True, require_expired=True)
        released += 1
    assigned = assignment.assign_pending(max_assignments=max_assignments)
    return {"released": released, "assigned": len(assigned)}
