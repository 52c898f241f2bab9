"""Site banners and the broadcast mail of the admin routes (spec §3.7)."""
from __future__ import annotations

from .. import mail
from ..store.banners import PARTITION, Banner
from ..store.counters import next_id
from ..store.users import scan_users


def add_site_banner(*, html: str, urgency: int) -> int:
    """Store a banner for /api/about; returns its id."""
    banner_id = next_id("banner")
    Banner(PARTITION, banner_id, html=html, urgency=urgency).save()
    return banner_id


def delete_site_banner(banner_id: int) -> None:
    """Remove a banner; an unknown id is not an error."""
    Banner(PARTITION, banner_id).delete()


def all_user_addresses() -> list[str]:
    """Every user's e-mail address once (local, OIDC and LDAP alike), sorted."""
    return sorted({user.email for user in scan_users("email") if user.email})


def send_email_to_all_users(*, subject: str, body: str) -> None:
    """Mail every user, in Bcc batches of at most 50 recipients (the SES limit).

    Sent before the response, not after it as upstream does: a Lambda is frozen once it has
    answered. One SES call per 50 users keeps a few thousand users well inside API Gateway's
    29 s. SES counts every recipient against the account's sending rate; a throttled batch is
    retried by the client and, if it still fails, logged (``mail.send`` never raises).
    """
    mail.send_email_to_all_users(all_user_addresses(), subject, body)
