"""Site banners (spec §3.7): stored by admins, shown by /api/about, sanitized both ways."""
from __future__ import annotations

from ..store.banners import PARTITION, Banner
from ..store.counters import next_id


def safe_banner_html(html: str) -> str:
    """Banner HTML with everything that could run script removed (nh3, the Ammonia sanitizer):
    no ``<script>``, no event handler attributes, no ``javascript:`` links; links get
    ``rel="noopener noreferrer"``. Frontends show banners as HTML, so a stolen or forged admin
    request must not be able to plant script there."""
    import nh3

    return nh3.clean(html, link_rel="noopener noreferrer")


def add_site_banner(*, html: str, urgency: int) -> int:
    """Store a banner for /api/about (sanitized); returns its id."""
    banner_id = next_id("banner")
    Banner(PARTITION, banner_id, html=safe_banner_html(html), urgency=urgency).save()
    return banner_id


def delete_site_banner(banner_id: int) -> None:
    """Remove a banner; an unknown id is not an error."""
    Banner(PARTITION, banner_id).delete()
