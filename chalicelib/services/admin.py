"""The admin routes' services (spec §3.7): runners, and the broadcast mail (banners: ``banners.py``)."""
from __future__ import annotations

from datetime import datetime, timezone

from .. import mail
from ..schemas.runners import RunnerInfoResponse, RunnerState
from ..store import jobs as job_store
from ..store import lifecycle
from ..store import runners as runner_store
from ..store.runners import RunnerRecord
from ..store.counters import next_id
from ..store.users import scan_users
from . import assignment, leases, tokens


def all_user_addresses() -> list[str]:
    """Every user's e-mail address once (local, OIDC and LDAP alike), sorted."""
    return sorted({user.email for user in scan_users("email") if user.email})


def send_email_to_all_users(*, subject: str, body: str) -> None:
    """Mail every user, in Bcc batches of at most 50 recipients (the SES limit).

    Sent before the response, not after it as upstream does: a Lambda is frozen once it has
    answered. One SES call per 50 users keeps a few thousand users well inside API Gateway's
    29 s. SES counts every recipient against the account's sending rate; a throttled batch is
    retried by the client and, if it still fails, logged (``mail.send`` never raises).
    """
    mail.send_email_to_all_users(all_user_addresses(), subject, body)


def create_runner() -> tuple[int, str]:
    """A new runner with a fresh token (only its hash is stored); returns (id, token)."""
    secret = tokens.new_secret()
    runner_id = next_id("runner")
    lifecycle.create_runner(tokens.hash_secret(secret), runner_id)
    return runner_id, secret


def invalidate_runner(runner_id: int) -> str:
    """Unregister (job back to the queue), delete the runner, and detach it from finished jobs."""
    runner = runner_store.by_id(runner_id)
    if runner is None:
        return f"No runner with id {runner_id} exists; nothing to do"
    if runner.online is not None or runner.job_id is not None:
        leases.release(runner, go_offline=True)
    lifecycle.remove_runner(runner.token_hash)
    lifecycle.detach_finished_jobs(runner_id, job_store.ids_by_runner(runner_id))
    assignment.assign_pending()
    return f"Runner {runner_id} was invalidated"


def list_runners() -> list[RunnerInfoResponse]:
    """Every runner with its state, its job and its last heartbeat, in id order (an admin's view)."""
    moment = leases.clock()
    return [_runner_info(runner, moment) for runner in runner_store.scan_all()]


def _runner_info(runner: RunnerRecord, moment: float) -> RunnerInfoResponse:
    if not runner.live(moment):
        state = RunnerState.offline
    elif runner.job_id is None:
        state = RunnerState.idle
    else:
        state = RunnerState.processing if runner.in_process else RunnerState.assigned
    # every lease renewal sets expires_at = now + LEASE_SECONDS, so this is when the runner last called
    heartbeat = (None if runner.expires_at is None
                 else datetime.fromtimestamp(runner.expires_at - leases.LEASE_SECONDS, tz=timezone.utc))
    return RunnerInfoResponse(id=runner.id, name=runner.name, version=runner.version, git_hash=runner.git_hash,
                              source_code_url=runner.source_code_url, priority=runner.priority, state=state,
                              job_id=runner.job_id, progress=runner.progress, last_heartbeat=heartbeat,
                              created_at=runner.created_at)
