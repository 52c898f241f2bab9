"""Admins router (spec §3.7). Every route needs an admin login (API tokens never qualify)."""
from __future__ import annotations

from ..schemas.runners import InvalidateRunnerQuery, RunnerCreatedResponse
from ..services import admin
from ._http import Call, Router

router = Router(__name__, prefix="/api/admins", tag="admins")


@router.route("/create_runner", "POST", gate="admin", response=RunnerCreatedResponse)
def create_runner(call: Call) -> RunnerCreatedResponse:
    """Create a runner (usable for every user's jobs); its token is shown only this once."""
    runner_id, token = admin.create_runner()
    return RunnerCreatedResponse(id=runner_id, token=token)


@router.route("/invalidate_runner", "DELETE", gate="admin", query=InvalidateRunnerQuery, response=str)
def invalidate_runner(call: Call) -> str:
    """Delete a runner so its token stops working; its current job goes back to the queue.

    Finished jobs keep the runner's name and version but no longer its id. Unknown ids are fine.
    """
    return admin.invalidate_runner(call.query.runner_id)
