"""Outgoing mail through SES, one intention-named function per message type (spec §8).

Every message is plain text. SES accepts at most 50 recipients per message, so broadcasts are
sent in batches of Bcc recipients. With ``mail.echo_to_console`` (the local stack) each message is
also printed, through the ``wisp.mail.console`` logger, whose handlers shorten the tokens in links
(``logs.RedactSecrets``); the local stack keeps the whole messages in a private file.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from . import aws
from .logs import MAIL_CONSOLE
from .settings import get_settings

log = logging.getLogger("wisp.mail")
console = logging.getLogger(MAIL_CONSOLE)

SES_MAX_RECIPIENTS = 50


def send(*, subject: str, body: str, to: Iterable[str] = (), bcc: Iterable[str] = ()) -> None:
    """Send one plain-text message. Failures are logged, never raised (spec §8)."""
    settings = get_settings()
    to, bcc = list(to), list(bcc)
    destination: dict[str, list[str]] = {}
    if to:
        destination["ToAddresses"] = to
    if bcc:
        destination["BccAddresses"] = bcc
    try:
        aws.client("ses").send_email(
            Source=settings.mail.sender_email,
            Destination=destination,
            Message={"Subject": {"Data": subject, "Charset": "UTF-8"},
                     "Body": {"Text": {"Data": body, "Charset": "UTF-8"}}},
        )
    except Exception:  # noqa: BLE001 - mail failures must not fail the request
        log.exception("sending mail %r failed", subject)
        return
    if settings.mail.echo_to_console:
        rcpt = ", ".join(to) + (f" (bcc: {', '.join(bcc)})" if bcc else "")
        console.info("\n----- mail to %s -----\nSubject: %s\n\n%s\n----- end of mail -----", rcpt, subject, body)


def send_bcc_batches(*, subject: str, body: str, recipients: Iterable[str]) -> None:
    unique = sorted(set(recipients))
    for start in range(0, len(unique), SES_MAX_RECIPIENTS):
        send(subject=subject, body=body, bcc=unique[start:start + SES_MAX_RECIPIENTS])


def _link(path: str) -> str:
    return f"{get_settings().client_url}{path}"


def send_activation_email(address: str, token: str) -> None:
    send(
        to=[address],
        subject="Wisp: activate your account",
        body=(
            "Welcome to Wisp!\n\n"
            "Please confirm your e-mail address by opening this link within 24 hours:\n\n"
            f"{_link('/local/activate?token=' + token)}\n\n"
            "If you did not sign up, you can ignore this message.\n"
        ),
    )


def send_email_change_email(new_address: str, token: str) -> None:
    send(
        to=[new_address],
        subject="Wisp: confirm your new e-mail address",
        body=(
            "Someone asked to change the e-mail address of a Wisp account to this address.\n\n"
            "To confirm the change, open this link within 24 hours:\n\n"
            f"{_link('/local/activate?token=' + token)}\n\n"
            "Until then the old address stays active. If this was not you, ignore this message.\n"
        ),
    )


def send_password_reset_email(address: str, token: str) -> None:
    send(
        to=[address],
        subject="Wisp: password reset request",
        body=(
            "Someone asked to reset the password of your Wisp account.\n\n"
            "To choose a new password, open this link. It works once, within 24 hours:\n\n"
            f"{_link('/auth/local/reset-password?token=' + token)}\n\n"
            "If this was not you, ignore this message; your password stays unchanged.\n"
        ),
    )


def send_job_success_email(address: str, job_id: int, file_name: str) -> None:
    send(
        to=[address],
        subject=f"Wisp: job {job_id} finished",
        body=(
            f"Your transcription job {job_id} ({file_name}) has finished successfully.\n\n"
            f"Download the transcript here: {_link('/')}\n"
        ),
    )


def send_job_failure_email(address: str, job_id: int, file_name: str, error: str) -> None:
    send(
        to=[address],
        subject=f"Wisp: job {job_id} failed",
        body=(
            f"Your transcription job {job_id} ({file_name}) has failed with this error:\n\n{error}\n\n"
            f"See your jobs here: {_link('/')}\n"
        ),
    )


def send_account_deletion_warning(addresses: Iterable[str], days_left: int) -> None:
    send_bcc_batches(
        recipients=addresses,
        subject=f"Wisp: your account will be deleted in {days_left} days",
        body=(
            f"Your Wisp account has not been used for a long time and will be deleted in {days_left} "
            "days together with all its jobs and transcripts.\n\n"
            f"To keep it, just log in once: {_link('/')}\n"
        ),
    )


def send_email_to_all_users(addresses: Iterable[str], subject: str, body: str) -> None:
    send_bcc_batches(recipients=addresses, subject=subject, body=body)
