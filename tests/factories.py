"""Factories that create store rows directly, and a reader for mail sent through (moto's) SES."""
from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.services import passwords, tokens
from chalicelib.store.counters import next_id
from chalicelib.store.users import Login, User, local_login_key

PASSWORD = "Correct-Horse-9!"


@dataclass
class Person:
    user: User
    password: str

    def session(self, *, admin: bool = False) -> str:
        return tokens.issue_session(self.user, name="pytest", admin=admin).secret

    def api_token(self) -> str:
        return tokens.issue_api_token(self.user, name="pytest-script").secret


_hashes: dict[str, str] = {}


def _hash(password: str) -> str:
    # argon2id at the real parameters costs ~0.1 s; tests reuse one hash per password
    if password not in _hashes:
        _hashes[password] = passwords.hash_password(password)
    return _hashes[password]


def make_user(email: str | None = None, *, verified: bool = True, admin: bool = False,
              password: str = PASSWORD, provision_number: int | None = None) -> Person:
    user_id = next_id("user")
    email = email or f"user{user_id}@example.org"
    user = User(user_id, user_type="local", email=email, login_key=local_login_key(email),
                password_hash=_hash(password), is_admin=admin, is_verified=verified,
                provision_number=provision_number)
    user.save()
    Login(local_login_key(email), user_id=user_id).save()
    return Person(user, password)


@dataclass
class Mail:
    to: list[str]
    bcc: list[str]
    subject: str
    body: str

    def link_token(self) -> str:
        match = re.search(r"[?&]token=([A-Za-z0-9._\-]+)", self.body)
        assert match, self.body
        return match.group(1)


def sent_mail() -> list[Mail]:
    """Every message sent through SES in this test (moto's in-process backend)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    backend = ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"]
    out = []
    for message in backend.sent_messages:
        dest = message.destinations
        out.append(Mail(to=list(dest.get("ToAddresses", [])), bcc=list(dest.get("BccAddresses", [])),
                        subject=message.subject, body=message.body))
    return out


def mail_to(address: str) -> list[Mail]:
    return [m for m in sent_mail() if address in m.to or address in m.bcc]


def commit_events(build, *found, held=(), let_go=()) -> None:  # type: ignore[no-untyped-def]
    """One event-log transaction (``store/transact.py``): ``build(tx)`` adds its items, then the
    events ``found`` ((user, event, job)) and the holdings ``held``/``let_go`` ((user, job, holder))."""
    from chalicelib.store import transact

    tx = transact.Tx()
    build(tx)
    for user_id, event, job_id in found:
        tx.event(user_id, event, job_id)
    for user_id, job_id, holder in held:
        tx.hold(user_id, job_id, holder)
    for user_id, job_id, holder in let_go:
        tx.let_go(user_id, job_id, holder)
    transact.run(tx)


class LeaseClock:
    """Moves the clock leases are compared with (``services.leases.clock``) forward."""

    def __init__(self, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        import time

        from chalicelib.services import leases

        self.offset = 0.0
        monkeypatch.setattr(leases, "clock", lambda: time.time() + self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds
