"""S3 storage of audio and transcripts: object keys, encrypted puts, pre-signed URLs, deletes.

Every object is written with server-side encryption: SSE-KMS with the configured key
(``WISP_KMS_KEY_ID``) or SSE-S3 (AES256). The bucket's default encryption (``bootstrap``) says the
same, so objects uploaded through pre-signed URLs are encrypted too.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import aws
from .settings import environment

URL_LIFETIME_SECONDS = 3600
TRANSCRIPT_TYPES = ("as_txt", "as_srt", "as_tsv", "as_vtt", "as_json")
TRANSCRIPT_MEDIA = {
    "as_txt": ("text/plain; charset=utf-8", "txt"),
    "as_srt": ("application/x-subrip; charset=utf-8", "srt"),
    "as_tsv": ("text/tab-separated-values; charset=utf-8", "tsv"),
    "as_vtt": ("text/vtt; charset=utf-8", "vtt"),
    "as_json": ("application/json", "json"),
}


class ObjectMissing(Exception):
    """The object does not exist."""


class ObjectTooLarge(Exception):
    """The object is bigger than the caller can handle."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


@dataclass
class StoredObject:
    data: bytes
    content_type: str | None
    size: int


@dataclass
class ObjectInfo:
    size: int
    content_type: str | None
    metadata: dict[str, str]


# ------------------------------------------------------------------------------------------
# Keys
# ------------------------------------------------------------------------------------------


def audio_key(job_id: int) -> str:
    return f"audio/{job_id}"


def transcript_key(job_id: int, transcript_type: str) -> str:
    return f"transcripts/{job_id}/{transcript_type}"


def transcript_keys(job_id: int) -> list[str]:
    return [transcript_key(job_id, t) for t in TRANSCRIPT_TYPES]


def upload_prefix(user_id: int) -> str:
    return f"uploads/{user_id}/"


def new_upload_key(user_id: int) -> str:
    return f"{upload_prefix(user_id)}{uuid.uuid4().hex}"


def result_prefix(job_id: int) -> str:
    return f"results/{job_id}/"


def new_result_key(job_id: int) -> str:
    return f"{result_prefix(job_id)}{uuid.uuid4().hex}.json"


# ------------------------------------------------------------------------------------------
# Objects
# ------------------------------------------------------------------------------------------


def _bucket() -> str:
    return environment().bucket


def encryption_args() -> dict[str, str]:
    """The SSE parameters every write carries."""
    kms = environment().kms_key_id
    if kms:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms}
    return {"ServerSideEncryption": "AES256"}


def put(key: str, data: bytes, *, content_type: str, metadata: dict[str, str] | None = None) -> None:
    aws.client("s3").put_object(Bucket=_bucket(), Key=key, Body=data, ContentType=content_type,
                                Metadata=metadata or {}, **encryption_args())


def get(key: str, *, max_bytes: int | None = None) -> StoredObject:
    """The object's bytes; ``ObjectTooLarge`` (without reading the body) past ``max_bytes``."""
    s3 = aws.client("s3")
    try:
        found = s3.get_object(Bucket=_bucket(), Key=key)
    except s3.exceptions.NoSuchKey:
        raise ObjectMissing(key) from None
    size = int(found.get("ContentLength", 0))
    if max_bytes is not None and size > max_bytes:
        found["Body"].close()
        raise ObjectTooLarge(size)
    return StoredObject(found["Body"].read(), found.get("ContentType"), size)


def head(key: str) -> ObjectInfo:
    s3 = aws.client("s3")
    try:
        found = s3.head_object(Bucket=_bucket(), Key=key)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise ObjectMissing(key) from None
        raise
    return ObjectInfo(int(found.get("ContentLength", 0)), found.get("ContentType"), dict(found.get("Metadata") or {}))


def delete(keys: list[str]) -> None:
    """Delete objects; missing ones are fine. One request per 1000 keys."""
    keys = [k for k in dict.fromkeys(keys) if k]
    s3 = aws.client("s3")
    for start in range(0, len(keys), 1000):
        chunk = keys[start:start + 1000]
        s3.delete_objects(Bucket=_bucket(), Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})


# ------------------------------------------------------------------------------------------
# Pre-signed URLs
# ------------------------------------------------------------------------------------------


def presigned_get(key: str, *, file_name: str | None = None, content_type: str | None = None,
                  expires: int = URL_LIFETIME_SECONDS) -> str:
    params: dict[str, Any] = {"Bucket": _bucket(), "Key": key}
    if file_name:
        params["ResponseContentDisposition"] = f'attachment; filename="{_ascii_name(file_name)}"'
    if content_type:
        params["ResponseContentType"] = content_type
    return aws.client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=expires)


def presigned_post(key: str, *, max_bytes: int, content_type: str = "application/json",
                   expires: int = URL_LIFETIME_SECONDS) -> dict[str, Any]:
    """A pre-signed POST for one object of at most ``max_bytes``; returns ``{url, fields}``."""
    fields: dict[str, str] = {"Content-Type": content_type}
    conditions: list[Any] = [{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]]
    for name, value in _post_encryption_fields().items():
        fields[name] = value
        conditions.append({name: value})
    return aws.client("s3").generate_presigned_post(_bucket(), key, Fields=fields, Conditions=conditions,
                                                    ExpiresIn=expires)


def _post_encryption_fields() -> dict[str, str]:
    kms = environment().kms_key_id
    if kms:
        return {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": kms}
    return {"x-amz-server-side-encryption": "AES256"}


def _ascii_name(name: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "transcript"


# ------------------------------------------------------------------------------------------
# Multipart uploads (Wisp direct-upload extension)
# ------------------------------------------------------------------------------------------


def create_multipart(key: str, *, content_type: str, metadata: dict[str, str]) -> str:
    found = aws.client("s3").create_multipart_upload(Bucket=_bucket(), Key=key, ContentType=content_type,
                                                     Metadata=metadata, **encryption_args())
    return str(found["UploadId"])


def presigned_part(key: str, upload_id: str, part_number: int, *, expires: int = URL_LIFETIME_SECONDS) -> str:
    return aws.client("s3").generate_presigned_url(
        "upload_part", Params={"Bucket": _bucket(), "Key": key, "UploadId": upload_id, "PartNumber": part_number},
        ExpiresIn=expires,
    )


def list_parts(key: str, upload_id: str) -> list[dict[str, Any]]:
    """Uploaded parts as ``{part_number, etag, size}``; ``ObjectMissing`` if the upload is gone."""
    s3 = aws.client("s3")
    parts: list[dict[str, Any]] = []
    marker = 0
    while True:
        try:
            page = s3.list_parts(Bucket=_bucket(), Key=key, UploadId=upload_id, PartNumberMarker=marker)
        except s3.exceptions.NoSuchUpload:
            raise ObjectMissing(key) from None
        parts.extend({"part_number": int(p["PartNumber"]), "etag": p["ETag"], "size": int(p["Size"])}
                     for p in page.get("Parts", []))
        if not page.get("IsTruncated"):
            return parts
        marker = int(page["NextPartNumberMarker"])


def complete_multipart(key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
    """Complete the upload once: ``ObjectMissing`` if it is gone or the object exists already.

    ``If-None-Match: *`` makes a second, concurrent completion fail on S3 (S3 itself accepts
    repeated completions), so one upload never turns into two jobs sharing one object."""
    list_parts(key, upload_id)  # raises ObjectMissing for an upload that was completed already
    s3 = aws.client("s3")
    try:
        s3.complete_multipart_upload(
            Bucket=_bucket(), Key=key, UploadId=upload_id, IfNoneMatch="*",
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(parts)]},
        )
    except s3.exceptions.NoSuchUpload:
        raise ObjectMissing(key) from None
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise ObjectMissing(key) from None
        raise


def abort_multipart(key: str, upload_id: str) -> None:
    """Abort an unfinished multipart upload (S3 frees its parts); one that is gone is fine."""
    s3 = aws.client("s3")
    try:
        s3.abort_multipart_upload(Bucket=_bucket(), Key=key, UploadId=upload_id)
    except s3.exceptions.NoSuchUpload:
        pass


@dataclass(frozen=True)
class PendingUpload:
    """An unfinished multipart upload."""

    key: str
    upload_id: str
    initiated: datetime


def multipart_uploads(prefix: str) -> list[PendingUpload]:
    """The unfinished multipart uploads whose keys start with ``prefix`` (ListMultipartUploads)."""
    s3 = aws.client("s3")
    found: list[PendingUpload] = []
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=_bucket(), Prefix=prefix):
        found.extend(PendingUpload(u["Key"], u["UploadId"], u["Initiated"]) for u in page.get("Uploads", []))
    return found


# ------------------------------------------------------------------------------------------
# Listing and whole prefixes (deletion, the daily sweep)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    key: str
    last_modified: datetime


def list_objects(prefix: str) -> list[Listed]:
    """Every object whose key starts with ``prefix`` (ListObjectsV2, paged)."""
    s3 = aws.client("s3")
    found: list[Listed] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=_bucket(), Prefix=prefix):
        found.extend(Listed(o["Key"], o["LastModified"]) for o in page.get("Contents", []))
    return found


def delete_prefix(prefix: str, *, uploads: bool = False) -> int:
    """Delete every object under ``prefix`` (and, with ``uploads``, abort its unfinished multipart
    uploads, whose parts are stored and billed but listed nowhere else); returns how many went."""
    if not prefix.endswith("/"):
        raise ValueError(f"a prefix to delete must end with '/': {prefix!r}")
    pending = multipart_uploads(prefix) if uploads else []
    for upload in pending:
        abort_multipart(upload.key, upload.upload_id)
    keys = [o.key for o in list_objects(prefix)]
    delete(keys)
    return len(keys) + len(pending)


def head_bytes(key: str, count: int) -> bytes:
    """The first ``count`` bytes of an object (a ranged GET); ``ObjectMissing`` if it is gone."""
    s3 = aws.client("s3")
    try:
        found = s3.get_object(Bucket=_bucket(), Key=key, Range=f"bytes=0-{max(0, count - 1)}")
    except s3.exceptions.NoSuchKey:
        raise ObjectMissing(key) from None
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object
            return b""
        raise
    return bytes(found["Body"].read())


def delete_prefixes(prefixes: list[str], *, workers: int = 16) -> int:
    """``delete_prefix`` for many prefixes, listed in parallel (a listing is one round trip each)."""
    prefixes = list(dict.fromkeys(prefixes))
    if len(prefixes) <= 1:
        return sum(delete_prefix(p) for p in prefixes)
    from concurrent.futures import ThreadPoolExecutor

    aws.client("s3")  # created once, before the threads share it
    with ThreadPoolExecutor(max_workers=min(workers, len(prefixes))) as pool:
        listed = list(pool.map(list_objects, prefixes))
    keys = [o.key for found in listed for o in found]
    delete(keys)
    return len(keys)
