"""multipart/form-data parsing with the ``multipart`` library (no hand-written parser)."""
from __future__ import annotations

import io
from dataclasses import dataclass

from . import errors


@dataclass
class UploadedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(raw: bytes, content_type: str) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """Split a multipart body into text fields and file parts. A malformed body is a 400."""
    import multipart

    _, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise errors.BadRequest("multipart/form-data body without a boundary")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    try:
        parser = multipart.MultipartParser(
            io.BytesIO(raw), boundary, content_length=len(raw),
            part_limit=64, disk_limit=0, mem_limit=len(raw) + 1024, memfile_limit=len(raw) + 1024,
        )
        for part in parser:
            if part.filename is None and not part.content_type:
                fields.setdefault(part.name, part.value)
            else:
                files.setdefault(part.name, UploadedFile(
                    field=part.name,
                    filename=part.filename or None,
                    content_type=part.headerlist and dict((k.lower(), v) for k, v in part.headerlist).get("content-type"),
                    data=part.raw,
                ))
    except multipart.MultipartError as exc:
        raise errors.BadRequest(f"malformed multipart/form-data body: {exc}") from None
    return fields, files
