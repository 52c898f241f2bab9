"""LDAP login (spec §3.4): who the person is, whether they are an admin, and their account.

The service account looks the user name up, ``admin_query`` first, then ``user_query``; exactly
one entry must match, with a uid and a mail attribute. A bind as that entry checks the password.
The account is keyed by (provider name, uid); its address and admin flag follow the directory at
every login. LDAP accounts count as verified and have no password here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import unquote

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.update import Action

from .. import errors, ldap_directory
from ..schemas.common import normalise_email
from ..settings import LdapProviderSettings, get_settings, ldap_service_password
from ..store.base import transact_write
from ..store.counters import next_id
from ..store.users import Login, User, ldap_login_key
from . import accounts, tokens

log = logging.getLogger("wisp.ldap")

MAX_USERNAME_CHARS = 256
WRONG = "Incorrect user name or password"


@dataclass(frozen=True)
class Person:
    """Who the directory says logged in."""

    uid: str
    email: str
    is_admin: bool


def ldap_enabled() -> None:
    """LDAP routes answer like unknown paths when no LDAP provider is configured (§0)."""
    if not get_settings().security.ldap_providers:
        raise errors.NotFound()


def provider_named(name: str) -> tuple[str, LdapProviderSettings]:
    """The provider whose name is exactly ``name`` (case-sensitive, spec §3.4); 400 otherwise.

    A name with spaces may reach us still percent-encoded (the stock frontend puts the name in
    the path as configured; gateways differ in decoding path parameters): that spelling works too."""
    providers = get_settings().security.ldap_providers
    for candidate in (name, unquote(name)):
        if candidate in providers:
            return candidate, providers[candidate]
    raise errors.BadRequest(f"There is no LDAP provider named '{unquote(name)}'")


def _unauthorized() -> errors.Unauthorized:
    return errors.Unauthorized(WRONG, headers={"WWW-Authenticate": "Bearer"})


def authenticate(provider: LdapProviderSettings, *, username: str, password: str) -> Person:
    """The person the user name names, if the password is theirs; 401 otherwise (no such entry,
    more than one, no uid or mail, wrong password), 503 if the directory cannot be asked."""
    if not username or not password or len(username) > MAX_USERNAME_CHARS:
        raise _unauthorized()
    try:
        username.encode("utf-8")
    except UnicodeEncodeError:
        raise _unauthorized() from None
    wanted = [provider.uid_attribute, provider.mail_attribute]
    try:
        service_password = ldap_service_password(provider)
        entry, is_admin = None, False
        for query, admin in ((provider.admin_query, True), (provider.user_query, False)):
            if query is None:
                continue
            found = ldap_directory.find(provider, service_password=service_password, query=query,
                                        username=username, attributes=wanted)
            if len(found) > 1:
                log.warning("LDAP %s: %d entries match one user name; refusing the login",
                            provider.server_address, len(found))
                raise _unauthorized()
            if found:
                entry, is_admin = found[0], admin
                break
        if entry is None:
            raise _unauthorized()
        uid, mail = entry.first(provider.uid_attribute), entry.first(provider.mail_attribute)
        if uid is None or mail is None:
            log.warning("LDAP %s: entry %s lacks %s; refusing the login", provider.server_address, entry.dn,
                        provider.uid_attribute if uid is None else provider.mail_attribute)
            raise _unauthorized()
        if not ldap_directory.password_is_right(provider, dn=entry.dn, password=password):
            raise _unauthorized()
    except ldap_directory.DirectoryUnavailable as exc:
        log.error("LDAP login: %s", exc)
        raise errors.ServiceUnavailable("The LDAP directory cannot be reached at the moment; please try again later") \
            from None
    try:
        email = normalise_email(mail)
    except ValueError:
        # spec §3.4: an invalid address in the directory is the server's problem (500)
        log.error("LDAP %s: entry %s has an invalid %s", provider.server_address, entry.dn, provider.mail_attribute)
        raise errors.AppError("The directory holds no valid e-mail address for this account") from None
    return Person(uid=uid, email=email, is_admin=is_admin)


def login(*, provider_name: str, username: str, password: str, scope: str, user_agent: str | None) -> str:
    """Check an LDAP login and open a session; returns the session secret (set as cookie)."""
    name, provider = provider_named(provider_name)
    person = authenticate(provider, username=username, password=password)
    admin = accounts.admin_scope(scope, is_admin=person.is_admin)
    user = account_of(name, person)
    return tokens.issue_session(user, name=accounts.session_name(user_agent), admin=admin).secret


def account_of(provider_name: str, person: Person) -> User:
    """The account of (provider, uid), created at the first login; address and admin flag as the
    directory says now."""
    key = ldap_login_key(provider_name, person.uid)
    for _attempt in range(2):
        try:
            user = User.get(Login.get(key, consistent_read=True).user_id, consistent_read=True)
        except DoesNotExist:
            user = None
        if user is not None:
            actions: list[Action] = []
            if user.email != person.email:
                actions.append(User.email.set(person.email))
            if bool(user.is_admin) != person.is_admin:
                actions.append(User.is_admin.set(person.is_admin))
            if actions:
                user.update(actions=actions)
            return user
        user = User(next_id("user"), user_type="ldap", email=person.email, login_key=key,
                    provider_name=provider_name, password_hash=None, is_admin=person.is_admin, is_verified=True)
        try:
            with transact_write() as tx:
                tx.save(Login(key, user_id=user.id), condition=Login.login_key.does_not_exist())
                tx.save(user, condition=User.id.does_not_exist())
        except TransactWriteError:
            continue  # a concurrent first login created it: read that one
        log.info("created LDAP account %s for %s", user.id, key)
        return user
    raise errors.ServiceUnavailable()


def may_create_api_tokens(user: User) -> bool:
    """Whether the LDAP user's provider allows API tokens (a provider no longer configured does not)."""
    provider = get_settings().security.ldap_providers.get(str(user.provider_name))
    return provider is not None and provider.allow_creation_of_api_tokens
