"""Direct uploads (Wisp extension, ``POST /api/wisp/uploads``): pre-signed S3 multipart uploads of
any size, resumable; completing one creates the job (``jobs.create_job``)."""
from __future__ import annotations

import base64
import json
import logging
import math
from urllib.parse import quote, unquote

from .. import errors, storage
from ..schemas.jobs import UploadedPart, UploadPartsResponse, UploadPartUrl, UploadRequest, UploadResponse
from ..settings import get_settings
from . import job_settings
from .jobs import SNIFF_BYTES, content_problem, create_job, is_media_type, max_upload_bytes

log = logging.getLogger("wisp.uploads")

MIN_PART_SIZE = 16 * 1024 * 1024
MAX_PARTS = 10_000
PARTS_ROUTE = "GET /api/wisp/uploads/{upload_id}/parts"
CANCEL_ROUTE = "DELETE /api/wisp/uploads/{upload_id}"


def _upload_signature(user_id: int, raw: bytes) -> str:
    import hashlib
    import hmac

    mac = hmac.new(get_settings().secret_key, b"wisp-upload:%d:" % user_id + raw, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def _encode_upload_id(user_id: int, suffix: str, s3_id: str, size: int, part_size: int) -> str:
    """An opaque id naming the S3 upload, signed for its owner (S3 needs the key with the id)."""
    raw = json.dumps([suffix, s3_id, size, part_size], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + _upload_signature(user_id, raw)


def _decode_upload_id(user_id: int, upload_id: str) -> tuple[str, str, int, int]:
    import hmac

    try:
        encoded, _, signature = upload_id.partition(".")
        raw = base64.urlsafe_b64decode((encoded + "=" * (-len(encoded) % 4)).encode())
        if not hmac.compare_digest(signature, _upload_signature(user_id, raw)):
            raise ValueError
        suffix, s3_id, size, part_size = json.loads(raw)
        if not (isinstance(suffix, str) and suffix.isalnum() and isinstance(s3_id, str)):
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise errors.BadRequest("Unknown upload") from None
    return storage.upload_prefix(user_id) + suffix, s3_id, int(size), int(part_size)


def _part_count(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size))


def start_upload(user_id: int, request: UploadRequest) -> UploadResponse:
    """Start a pre-signed multipart upload straight to S3 (files far beyond Lambda's limits)."""
    if not is_media_type(request.content_type):
        raise errors.UnsupportedMediaType("The file must have an audio/* or video/* content type")
    if request.size > max_upload_bytes():
        raise errors.PayloadTooLarge(f"Files may be at most {max_upload_bytes()} bytes")
    limit = get_settings().limits.open_uploads_per_user
    if len(storage.multipart_uploads(storage.upload_prefix(user_id))) >= limit:
        raise errors.BadRequest(
            f"You have {limit} unfinished uploads, the most this server allows per user "
            f"(limits.open_uploads_per_user); complete or cancel ({CANCEL_ROUTE}) one of them first")
    mib = 1024 * 1024
    part_size = max(MIN_PART_SIZE, math.ceil(request.size / MAX_PARTS / mib) * mib)
    key = storage.new_upload_key(user_id)
    s3_id = storage.create_multipart(key, content_type=request.content_type,
                                     metadata={"file-name": quote(request.file_name, safe="")})
    upload_id = _encode_upload_id(user_id, key.rsplit("/", 1)[1], s3_id, request.size, part_size)
    parts = [UploadPartUrl(part_number=n, url=storage.presigned_part(key, s3_id, n))
             for n in range(1, _part_count(request.size, part_size) + 1)]
    return UploadResponse(upload_id=upload_id, key=key, part_size=part_size, parts=parts)


def upload_parts(user_id: int, upload_id: str) -> UploadPartsResponse:
    """Resume: the parts already uploaded, and fresh URLs for the missing ones."""
    key, s3_id, size, part_size = _decode_upload_id(user_id, upload_id)
    try:
        uploaded = storage.list_parts(key, s3_id)
    except storage.ObjectMissing:
        raise errors.BadRequest("Unknown upload") from None
    done = {p["part_number"] for p in uploaded}
    missing = [UploadPartUrl(part_number=n, url=storage.presigned_part(key, s3_id, n))
               for n in range(1, _part_count(size, part_size) + 1) if n not in done]
    return UploadPartsResponse(upload_id=upload_id, key=key, part_size=part_size, uploaded=[UploadedPart(**p) for p in uploaded], parts=missing)


def complete_upload(user_id: int, upload_id: str, parts: list[tuple[int, str]], settings_id: int | None,
                    has_default_settings: bool | None = None) -> int:
    """Finish the upload, check the stored object, and create the job; returns its id."""
    key, s3_id, _size, _part = _decode_upload_id(user_id, upload_id)
    # 400 before anything is final
    resolved = job_settings.resolve_for_job(user_id, settings_id, has_default=has_default_settings)
    try:
        storage.complete_multipart(key, s3_id, parts)
    except storage.ObjectMissing:
        raise errors.BadRequest("Unknown upload") from None
    except Exception as exc:  # noqa: BLE001 - S3 rejects wrong ETags/part lists with a ClientError
        if getattr(exc, "response", None) is None:
            raise
        log.warning("completing upload %s of user %s failed: %s", key, user_id, exc)
        raise errors.BadRequest(
            "The upload could not be completed: the part numbers and ETags sent do not match the parts "
            f"uploaded (each part but the last must be part_size bytes). {PARTS_ROUTE} lists the parts "
            "stored so far; upload the missing ones and try again") from None
    stored = storage.head(key)
    if stored.size > max_upload_bytes():
        storage.delete([key])
        raise errors.PayloadTooLarge(f"Files may be at most {max_upload_bytes()} bytes")
    problem = None if is_media_type(stored.content_type) else "The file must have an audio/* or video/* content type"
    problem = problem or content_problem(storage.head_bytes(key, SNIFF_BYTES))
    if problem is not None:
        storage.delete([key])
        raise errors.UnsupportedMediaType(problem)
    file_name = unquote(stored.metadata.get("file-name", "")) or "upload"
    return create_job(user_id=user_id, file_name=file_name, audio_key=key, resolved=resolved)


def cancel_upload(user_id: int, upload_id: str) -> str:
    """Abort an unfinished direct upload: S3 drops its parts, and it no longer counts as open."""
    key, s3_id, _size, _part = _decode_upload_id(user_id, upload_id)
    storage.abort_multipart(key, s3_id)
    return "Success"
