"""Storing what runners deliver: transcripts in S3 and the owner's notification mail.

A result is first stored whole under a key of its own (``stage``; the result-upload extension's
object already is one), and the job's ``finish`` transition names that key. Only then are the five
transcript files written where downloads find them (``publish``). So a result that arrives for a
job its runner no longer holds (finished, aborted, given to another runner) never touches the
stored transcript, and a crash between the two steps loses nothing: a download that finds no
transcript file writes them from the named result (``ensure_published``).
"""
from __future__ import annotations

import json
import logging
from typing import Any

from .. import mail, storage
from ..store.jobs import JobRecord

log = logging.getLogger("wisp.results")


def stage(job_id: int, transcript: dict[str, Any]) -> str:
    """Store a submitted result under a key of its own; returns the key."""
    key = storage.new_result_key(job_id)
    storage.put(key, json.dumps({"transcript": transcript}, ensure_ascii=False).encode("utf-8"),
                content_type="application/json")
    return key


def publish(job_id: int, transcript: dict[str, Any]) -> None:
    """Write the five transcript files of a succeeded job."""
    for kind in storage.TRANSCRIPT_TYPES:
        value = transcript[kind]
        text = json.dumps(value, ensure_ascii=False) if kind == "as_json" else str(value)
        storage.put(storage.transcript_key(job_id, kind), text.encode("utf-8"),
                    content_type=storage.TRANSCRIPT_MEDIA[kind][0])


def ensure_published(job: JobRecord) -> bool:
    """After a crash between finishing a job and writing its files: write them now. False if the
    job has no stored result to write them from."""
    if not job.has_transcript or not job.result_key:
        return False
    try:
        found = storage.get(job.result_key)
    except storage.ObjectMissing:
        return False
    publish(job.id, json.loads(found.data)["transcript"])
    return True


def discard(keys: list[str | None]) -> None:
    storage.delete([k for k in keys if k])


def notify(user_id: int, job_id: int, file_name: str, error: str | None) -> None:
    from ..store.users import email_of

    email = email_of(user_id)
    if email is None:
        return
    if error is None:
        mail.send_job_success_email(email, job_id, file_name)
    else:
        mail.send_job_failure_email(email, job_id, file_name, error)
