"""ECS task scale-in protection while the runner holds a job.

The backend sets the runner service's desired count (``chalicelib/services/scaling.py``); when it
lowers it, ECS picks the tasks to stop. A task whose container has asked the ECS agent for
scale-in protection is not picked, so a runner protects its task from the moment it takes a job
until it lets go of it, through the agent's endpoint ``$ECS_AGENT_URI/task-protection/v1/state``:

* ``PUT {"ProtectionEnabled": true, "ExpiresInMinutes": N}`` when a job is taken, and again before
  it expires while the job runs (renewed from the heartbeat thread);
* ``PUT {"ProtectionEnabled": false}`` when the job is done, failed, aborted or dropped.

The agent answers ``{"protection": {...}}`` on success, ``{"failure": {...}}`` or ``{"error": {...}}``
otherwise. Without ``ECS_AGENT_URI`` (local runs, tests) nothing is sent. A failure is logged and
tried again at the next heartbeat; it never touches the job. The expiry bounds the harm of a runner
that hangs while protected: ECS may stop its task ``N`` minutes later at the latest.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

import requests

log = logging.getLogger(__name__)

ENV_AGENT_URI = "ECS_AGENT_URI"
STATE_PATH = "/task-protection/v1/state"
PROTECT_MINUTES = 30  # each protection lasts this long ...
RENEW_AFTER_SECONDS = 10 * 60.0  # ... and is renewed this long after it was set, while the job runs
REQUEST_TIMEOUT = 3.0  # seconds; the agent is local, and a heartbeat waits for this call
RETRY_AFTER_SECONDS = 15.0  # a failed request is tried again no sooner than this


class TaskProtection:
    """Keeps this task's scale-in protection in step with "the runner holds a job".

    ``hold()`` / ``release()`` are called when a job is taken / let go (main thread), ``renew()``
    regularly (heartbeat thread); every call is cheap when there is nothing to send."""

    def __init__(self, agent_uri: str | None, *, minutes: int = PROTECT_MINUTES,
                 renew_after: float = RENEW_AFTER_SECONDS, retry_after: float = RETRY_AFTER_SECONDS,
                 timeout: float = REQUEST_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = agent_uri.rstrip("/") + STATE_PATH if agent_uri else None
        self.minutes = minutes
        self.renew_after = renew_after
        self.retry_after = retry_after
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._wanted = False  # the runner holds a job
        self._protected_at: float | None = None  # when the agent last confirmed protection
        self._unsure = False  # a release failed: the agent may still protect the task
        self._failed_at: float | None = None
        self._failures = 0

    @classmethod
    def from_env(cls) -> "TaskProtection":
        return cls(os.environ.get(ENV_AGENT_URI) or None)

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def hold(self) -> None:
        """The runner took a job: protect the task (now, whatever failed before)."""
        with self._lock:
            self._wanted = True
            self._failed_at = None
        self.renew()

    def release(self) -> None:
        """The runner let go of its job: let ECS stop the task again."""
        with self._lock:
            self._wanted = False
            self._failed_at = None
        self.renew()

    def renew(self) -> None:
        """Send what is due: protection when a job is held and it was never set or is getting old,
        the release when one is owed. Never raises."""
        if self.url is None:
            return
        with self._lock:
            now = self.clock()
            if self._failed_at is not None and now - self._failed_at < self.retry_after:
                return
            if self._wanted:
                due = self._protected_at is None or now - self._protected_at >= self.renew_after
            else:
                due = self._protected_at is not None or self._unsure
            if not due:
                return
            enable = self._wanted
            ok = self._put(enable)
            if not ok:
                self._failed_at = self.clock()
                if not enable:
                    self._unsure = True
                return
            self._failed_at = None
            self._unsure = False
            self._protected_at = now if enable else None

    def _put(self, enable: bool) -> bool:
        body: dict[str, Any] = {"ProtectionEnabled": enable}
        if enable:
            body["ExpiresInMinutes"] = self.minutes
        what = "protection" if enable else "the release of protection"
        try:
            response = requests.put(self.url or "", json=body, timeout=self.timeout)
            answer = response.json() if response.content else {}
        except Exception as exc:  # noqa: BLE001 - never let protection break a job
            return self._failed(f"{what}: no usable answer from the ECS agent ({exc})")
        if not response.ok or not isinstance(answer, dict) or "protection" not in answer:
            detail = answer.get("failure") or answer.get("error") if isinstance(answer, dict) else None
            return self._failed(f"{what}: the ECS agent answered {response.status_code}: {detail or answer}")
        if self._failures:
            log.info("task scale-in protection works again")
        self._failures = 0
        log.debug("task scale-in protection %s", "on" if enable else "off")
        return True

    def _failed(self, message: str) -> bool:
        self._failures += 1
        # the first failure in a row is a warning, the next ones (every retry) only debug
        log.log(logging.WARNING if self._failures == 1 else logging.DEBUG,
                "task scale-in protection failed (%s); trying again in %.0f s; the job is not affected",
                message, self.retry_after)
        return False
