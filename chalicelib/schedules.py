"""Wisp's Lambda functions besides the API, registered in one place.

* ``sweep_runners`` (every minute): expired runners' jobs go back to the queue, pending jobs go to
  idle runners, then the runner count is set and the fleet metrics published (``services/scaling.py``).
* ``periodic_tasks`` (daily, 00:00 UTC): the cleanups and retention rules of spec §11
  (``chalicelib/periodic.py``).
* ``provision_users`` (invoked by ``infra/deploy.py`` after every deploy, and by the local stack at
  start): creates/updates the accounts of ``security.local_account.user_provisioning`` (spec §9).

``app.py`` calls ``register(app)`` once after the blueprints.
"""
from __future__ import annotations

import logging
from typing import Any

from chalice import Chalice, Cron, Rate

log = logging.getLogger("wisp.schedules")

SWEEP_NAME = "sweep_runners"
DAILY_NAME = "periodic_tasks"
PROVISION_NAME = "provision_users"


def sweep_runners(event: Any = None) -> dict[str, int]:
    """Every minute: release expired runners, assign pending jobs, then set the runner count and
    publish the fleet metrics (``services/scaling.py``).

    The scaling step runs even when the sweep fails, so a broken sweep neither strands queued jobs
    without runners nor leaves idle GPUs running; the failure is raised afterwards, so the function's
    Errors metric shows it. Upstream has no sweeper (spec §12.4); without it a job whose runner died
    waits for the next submit/register/result even while other runners idle."""
    from .services import sweeper

    result = {"released": 0, "assigned": 0}
    scaling_error: Exception | None = None
    try:
        result = sweeper.sweep()
        if result["released"] or result["assigned"]:
            log.info("sweeper: released %(released)d expired runners, assigned %(assigned)d jobs", result)
    except Exception:
        log.exception("the sweep failed; scaling the runners all the same")
        raise
    finally:
        scaling_error = _scale_runners()
    if scaling_error is not None:
        raise scaling_error
    return result


def _scale_runners() -> Exception | None:
    """One scaling tick; its failure is logged and returned, never raised here (it must not hide a
    sweep failure that is on its way up)."""
    from .services import scaling

    try:
        scaling.tick()
    except Exception as exc:  # noqa: BLE001 - raised by sweep_runners once the sweep's outcome is known
        log.exception("scaling the runners failed")
        return exc
    return None


def periodic_tasks(event: Any = None) -> dict[str, str]:
    """Daily: token/audio cleanup, job and user retention (each skipped if it ran < 23 h ago)."""
    from . import periodic

    return periodic.run_all()


def provision_users(event: Any = None, context: Any = None) -> dict[str, list[int]]:
    """Apply the configured account provisioning; returns the provisioned user ids."""
    from .services import accounts

    return {"provisioned": accounts.provision_users()}


def register(app: Chalice) -> None:
    """Add Wisp's scheduled functions to ``app``."""
    app.schedule(Rate(1, unit=Rate.MINUTES), name=SWEEP_NAME,
                 description="Wisp: requeue jobs of expired runners, assign jobs, set the runner count")(sweep_runners)
    app.schedule(Cron(0, 0, "*", "*", "?", "*"), name=DAILY_NAME,
                 description="Wisp daily tasks: token/audio cleanup, job and user retention")(periodic_tasks)
    app.lambda_function(name=PROVISION_NAME)(provision_users)
