"""The application's own throttles: guessing and flooding (issue 12 §2; stage-level API Gateway
throttling is the deployment's layer).

Each rule limits the attempts of one subject (an account's e-mail address, or a client address)
in a fixed window. The counters live in DynamoDB (``store/throttles.py``), so they hold across
Lambda instances, and expire with TTL. Over the limit, the answer is 429 with ``Retry-After``
(seconds until the window ends).

Login counts every attempt per client address, but per account only the failed ones (a person
who logs in often is never locked out by their own successes): the account's counter is read
before the password is checked, so a locked account costs no argon2 work.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..store import throttles as store

log = logging.getLogger("wisp.throttles")


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int  # attempts allowed per window
    window_s: int


LOGIN_PER_ADDRESS = Rule("login-address", 60, 15 * 60)  # a campus NAT shares one address
LOGIN_FAILURES_PER_ACCOUNT = Rule("login-account", 10, 15 * 60)
RESET_PER_ADDRESS = Rule("reset-address", 20, 60 * 60)
RESET_PER_ACCOUNT = Rule("reset-account", 3, 60 * 60)  # reset mails to one person
ACTIVATION_PER_ADDRESS = Rule("activation-address", 20, 60 * 60)
ACTIVATION_PER_ACCOUNT = Rule("activation-account", 3, 60 * 60)  # activation mails to one person
SIGNUP_PER_ADDRESS = Rule("signup-address", 10, 60 * 60)
SIGNUP_PER_ACCOUNT = Rule("signup-account", 3, 60 * 60)

# Answers that must not tell whether an account exists take at least this long, whichever way
# they went (the reset mail is sent on one path only). Above the slowest path's usual time.
CONSTANT_ANSWER_S = 0.5


def client_address(request: Any) -> str:
    """The caller's address as API Gateway saw it (the TCP peer, not a header a client could set)."""
    context = getattr(request, "context", None) or {}
    return str((context.get("identity") or {}).get("sourceIp") or "unknown")


def _key(rule: Rule, subject: str, window_start: int) -> str:
    digest = hashlib.sha256(f"{rule.name}\0{subject.strip().lower()}".encode()).hexdigest()[:32]
    return f"{rule.name}:{digest}:{window_start}"


def _window(rule: Rule) -> tuple[int, int]:
    now = int(time.time())
    start = now - now % rule.window_s
    return start, start + rule.window_s


def _refuse(rule: Rule, window_end: int) -> errors.TooManyRequests:
    wait = max(1, window_end - int(time.time()))
    log.warning("throttle %s: limit of %d per %d s reached", rule.name, rule.limit, rule.window_s)
    return errors.TooManyRequests(f"Too many attempts; please try again in {_in_words(wait)}",
                                  headers={"Retry-After": str(wait)})


def _in_words(seconds: int) -> str:
    minutes = (seconds + 59) // 60
    return f"{seconds} seconds" if seconds < 60 else f"{minutes} minute{'s' if minutes != 1 else ''}"


def count(rule: Rule, subject: str) -> None:
    """Count this attempt; 429 if it goes over the rule's limit."""
    start, end = _window(rule)
    if store.hit(_key(rule, subject, start), expires_at=end) > rule.limit:
        raise _refuse(rule, end)


def check(rule: Rule, subject: str) -> None:
    """429 if the rule's limit is reached, without counting."""
    start, end = _window(rule)
    if store.hits(_key(rule, subject, start)) >= rule.limit:
        raise _refuse(rule, end)


@contextlib.contextmanager
def failures_counted(rule: Rule, subject: str) -> Iterator[None]:
    """429 before the attempt if the subject failed too often; a failure (401/403) inside counts."""
    check(rule, subject)
    try:
        yield
    except (errors.Unauthorized, errors.Forbidden):
        start, end = _window(rule)
        store.hit(_key(rule, subject, start), expires_at=end)
        raise


@contextlib.contextmanager
def constant_time(seconds: float = -1.0) -> Iterator[None]:
    """The block takes at least ``seconds`` (default ``CONSTANT_ANSWER_S``), however it ends."""
    floor = CONSTANT_ANSWER_S if seconds < 0 else seconds
    started = time.monotonic()
    try:
        yield
    finally:
        left = floor - (time.monotonic() - started)
        if left > 0:
            time.sleep(left)
        elif floor > 0:
            log.warning("a constant-time answer took %.3f s, over its %.3f s floor", floor - left, floor)


def login(request: Any, email: str) -> contextlib.AbstractContextManager[None]:
    """Login: every attempt counts per client address, failures per account."""
    count(LOGIN_PER_ADDRESS, client_address(request))
    return failures_counted(LOGIN_FAILURES_PER_ACCOUNT, email)


def password_reset(request: Any, email: str) -> None:
    count(RESET_PER_ADDRESS, client_address(request))
    count(RESET_PER_ACCOUNT, email)


def activation_mail(request: Any, email: str) -> None:
    count(ACTIVATION_PER_ADDRESS, client_address(request))
    count(ACTIVATION_PER_ACCOUNT, email)


def signup(request: Any, email: str) -> None:
    count(SIGNUP_PER_ADDRESS, client_address(request))
    count(SIGNUP_PER_ACCOUNT, email)
