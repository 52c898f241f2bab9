"""Logging set-up: one line per record to stderr (CloudWatch in Lambda), secrets shortened.

Every handler Wisp installs carries :class:`RedactSecrets`: credentials that can reach a log line
(a runner's ``session_token`` or an e-mail link's ``token`` in a URL, a Bearer header, a token
cookie, a bare user token or e-mail link token) are cut to their first four characters and "…",
which is enough to tell two of them apart and useless to anyone who reads the log.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from typing import TextIO

# the mails that ``mail.echo_to_console`` prints (the local stack): stdout, the message alone
MAIL_CONSOLE = "wisp.mail.console"

KEEP = 4  # characters of a secret left in a log line
_SHORT = "…"

_VALUE = r"[^\s&#;,\"'<>()\[\]]+"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # query parameters and the token cookie: ?session_token=…, &token=…, "Cookie: token=…"
    (re.compile(r"(?<![A-Za-z0-9_])((?:session_token|token)=)(" + _VALUE + ")"), "kv"),
    # the same names as JSON fields, and passwords (left out entirely below)
    (re.compile(r'("(?:session_token|token|password|new_password)"\s*:\s*")([^"]*)(")'), "json"),
    # Authorization: Bearer …
    (re.compile(r"(?i)(\bbearer\s+)(" + _VALUE + ")"), "kv"),
    # e-mail link tokens (JWTs) wherever they stand
    (re.compile(r"(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"), "bare"),
    # user tokens (<user id>.<43 characters>), runner tokens and session tokens (43 characters)
    (re.compile(r"(?<![A-Za-z0-9_.-])((?:\d{1,15}\.)?[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])"), "bare"),
)


def shorten(secret: str) -> str:
    """The first few characters of a secret and "…" (a user token keeps its user id as well)."""
    head, dot, rest = secret.partition(".")
    if dot and head.isdigit() and len(rest) > KEEP:
        return f"{head}.{rest[:KEEP]}{_SHORT}"
    if len(secret) <= KEEP or secret.endswith(_SHORT):
        return secret
    return secret[:KEEP] + _SHORT


def redact(text: str) -> str:
    """``text`` with every secret it contains shortened (idempotent)."""
    for pattern, kind in _PATTERNS:
        if kind == "kv":
            text = pattern.sub(lambda m: m.group(1) + shorten(m.group(2)), text)
        elif kind == "json":
            text = pattern.sub(lambda m: m.group(1) + (_SHORT if "password" in m.group(1) else shorten(m.group(2)))
                               + m.group(3), text)
        else:
            text = pattern.sub(lambda m: shorten(m.group(1)), text)
    return text


class RedactSecrets(logging.Filter):
    """A handler filter that rewrites the record it lets through: message, traceback and stack
    shortened by :func:`redact`. The record is changed in place (what a filter can do before
    Python 3.12), so a handler that must see the original runs before this one."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _StandardStream(logging.StreamHandler):
    """Writes to ``sys.stderr`` or ``sys.stdout`` as they are at each record (as Python's last-resort
    handler does), so a replaced stream (a test's capture) gets the lines."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    @property
    def stream(self) -> TextIO:
        return getattr(sys, self._name)

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def wisp_handler(stream: str, fmt: str) -> logging.Handler:
    """A handler of Wisp's: to ``stream`` ("stderr" or "stdout"), secrets redacted."""
    handler = _StandardStream(stream)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(RedactSecrets())
    handler.wisp = True  # type: ignore[attr-defined]  # configure() replaces its own handlers only
    return handler


def configure() -> None:
    level = os.environ.get("WISP_LOG_LEVEL", "INFO").upper()
    logger = logging.getLogger("wisp")
    # exactly one handler: Chalice adds its own to the logger named after the app ("wisp"), which
    # would print every record twice
    logger.handlers = [wisp_handler("stderr", "%(asctime)s %(levelname)s %(name)s: %(message)s")]
    logger.setLevel(level)
    logger.propagate = False
    # printed mails: the message as it is, on stdout; a handler someone else put first (the local
    # stack's mailbox) stays
    mails = logging.getLogger(MAIL_CONSOLE)
    mails.handlers = [h for h in mails.handlers if not getattr(h, "wisp", False)] + [wisp_handler("stdout", "%(message)s")]
    mails.setLevel(logging.INFO)
    mails.propagate = False
