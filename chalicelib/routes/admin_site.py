"""Admin routes for the whole site: banners and a broadcast mail (spec §3.7).

The runner admin routes live in ``routes/admins.py``; both routers share the prefix and tag.
"""
from __future__ import annotations

from pydantic import BaseModel

from ..schemas.admin_site import EmailToUsersRequest, SiteBannerRequest
from ..services import admin, banners
from ._http import Call, Router

router = Router(__name__, prefix="/api/admins", tag="admins")


class BannerIdQuery(BaseModel):
    banner_id: int


@router.route("/add_site_banner", "POST", gate="admin", body=SiteBannerRequest, response=int)
def add_site_banner(call: Call) -> int:
    """Add a banner to the site; returns its id.

    Banners are listed by /api/about, highest ``urgency`` first; the frontend highlights the text
    from urgency 100 and the background from 200. ``html`` is shown as-is. Needs an admin login.
    """
    return banners.add_site_banner(html=call.body.html, urgency=call.body.urgency)


@router.route("/delete_site_banner", "DELETE", gate="admin", query=BannerIdQuery, response=None)
def delete_site_banner(call: Call) -> None:
    """Remove a site banner by its id; an unknown id is not an error. Needs an admin login."""
    banners.delete_site_banner(call.query.banner_id)


@router.route("/send_email_to_all_users", "POST", gate="admin", body=EmailToUsersRequest, response=None)
def send_email_to_all_users(call: Call) -> None:
    """Send a plain-text e-mail to every user.

    Every address gets the message once, as a Bcc recipient, in batches of at most 50 recipients
    per message. Needs an admin login.
    """
    admin.send_email_to_all_users(subject=call.body.subject, body=call.body.body)
