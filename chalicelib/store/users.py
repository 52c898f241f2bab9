"""Users and their unique login keys.

``Login`` makes a login key unique (DynamoDB has no unique secondary indexes): a local account
claims ``local#<normalised email>``; OIDC and LDAP accounts would claim ``oidc#<iss>#<sub>`` and
``ldap#<provider>#<uid>``. The user row and its claim are written in one transaction.
"""
from __future__ import annotations

from collections.abc import Iterator

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from .base import TableMeta, UTCDateTime, now, table


class User(Model):
    class Meta(TableMeta):
        table_name = table("users")

    id = NumberAttribute(hash_key=True)
    user_type = UnicodeAttribute()  # local | oidc | ldap
    email = UnicodeAttribute()
    login_key = UnicodeAttribute()
    provider_name = UnicodeAttribute(default="project-W")
    password_hash = UnicodeAttribute(null=True)
    is_admin = BooleanAttribute(default=False)
    is_verified = BooleanAttribute(default=False)
    provision_number = NumberAttribute(null=True)
    accepted_tos = JSONAttribute(default=dict)  # str(tos id) → accepted version
    # whether a default job settings pointer exists (set in the transaction that writes it), so a
    # submit without settings id reads no settings; None on rows older than this flag: look
    has_default_settings = BooleanAttribute(null=True, default_for_new=False)
    created_at = UTCDateTime(default=now)
    # how often the address changed (None on rows older than this counter: 0); an e-mail-change
    # link names the count it was issued at, so it completes one change and no later one
    email_changes = NumberAttribute(null=True)


class Login(Model):
    class Meta(TableMeta):
        table_name = table("logins")

    login_key = UnicodeAttribute(hash_key=True)
    user_id = NumberAttribute()


def local_login_key(email: str) -> str:
    return f"local#{email}"


def oidc_login_key(issuer: str, subject: str) -> str:
    """An OIDC account's key: the IdP's issuer and its subject id (stable, unlike the address)."""
    return f"oidc#{issuer}#{subject}"


def ldap_login_key(provider: str, uid: str) -> str:
    """An LDAP account's key: the provider's name and the person's uid attribute (spec §3.4).

    ``%`` and ``#`` in the name are percent-encoded, so no (name, uid) pair reads as another."""
    name = provider.replace("%", "%25").replace("#", "%23")
    return f"ldap#{name}#{uid}"


def provision_key(number: int) -> str:
    return f"provision#{number}"


def scan_users(*attributes: str) -> Iterator[User]:
    """Every user, read with a Scan (only the named attributes, if any are given).

    For the rare whole-population jobs only: the admin broadcast and the daily tasks. A Scan reads
    the table once at ~0.5 read units per 4 KB (cents for a million users); the alternative, a
    GSI with one constant partition key, would add a write to every user change and concentrate
    all users in one hot partition. Never call this on a request path that users trigger.
    """
    return User.scan(attributes_to_get=list(attributes) or None)


def email_of(user_id: int) -> str | None:
    """The user's e-mail address; None if the user is gone."""
    try:
        return str(User.get(user_id).email)
    except User.DoesNotExist:
        return None
