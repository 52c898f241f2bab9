"""Request bodies of the admin site routes (banners, broadcast mail); upstream's names."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .common import RequestModel

# Upstream sets no limits; DynamoDB does (400 KB per item, 38-digit numbers), so a banner that
# could not be stored is refused with a 422 instead of failing with a 500.
MAX_BANNER_HTML = 65_536  # characters: at most 256 KB of UTF-8
INT64 = 2**63 - 1


class SiteBannerRequest(RequestModel):
    html: Annotated[str, Field(max_length=MAX_BANNER_HTML)]  # shown as-is by the frontend
    # higher first; ≥ 100 highlighted text, ≥ 200 highlighted background
    urgency: Annotated[int, Field(ge=-INT64 - 1, le=INT64)]


class EmailToUsersRequest(RequestModel):
    subject: str
    body: str  # plain text
