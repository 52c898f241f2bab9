"""Accounts: local sign-up, activation, login, password and e-mail changes, provisioning, deletion."""
from __future__ import annotations

import hmac
import logging
from typing import cast

from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action


from .. import errors, mail
from ..schemas.common import email_domain, normalise_email
from ..schemas.users import TokenInfoResponse, UserResponse, UserType
from ..settings import ConfigError, get_settings
from ..store.base import transact_write
from ..store.counters import next_id
from ..store.tokens import Token
from ..store.users import Login, User, local_login_key, provision_key
from . import email_tokens, passwords, tokens

log = logging.getLogger("wisp.accounts")

UNKNOWN_DEVICE = "Unknown device"
LINK_SPENT = "This link was used already, or the address changed since it was sent"


# ------------------------------------------------------------------------------------------
# Look-ups
# ------------------------------------------------------------------------------------------


def find_local(email: str) -> User | None:
    """The local account with this (normalised) address, or None."""
    try:
        login = Login.get(local_login_key(email), consistent_read=True)
        return User.get(login.user_id, consistent_read=True)
    except DoesNotExist:
        return None


def user_info(user: User) -> UserResponse:
    return UserResponse(
        id=int(user.id), email=user.email,
        accepted_tos={int(k): int(v) for k, v in (user.accepted_tos or {}).items()},
        provider_name=user.provider_name, user_type=cast(UserType, user.user_type),  # pydantic checks it
        is_verified=bool(user.is_verified),
    )


def token_infos(user: User) -> list[TokenInfoResponse]:
    return [
        TokenInfoResponse(id=int(t.id), name=t.name, admin_privileges=bool(t.admin_privileges),
                          explicit=bool(t.explicit), expires_at=t.expires_at, last_usage=t.last_usage)
        for t in tokens.live_tokens_of(int(user.id))
    ]


# ------------------------------------------------------------------------------------------
# Local accounts
# ------------------------------------------------------------------------------------------


def local_accounts_enabled() -> None:
    """Local-account routes answer like unknown paths when local accounts are disabled (§0)."""
    if get_settings().security.local_account.mode == "disabled":
        raise errors.NotFound()


def _check_domain(email: str) -> None:
    allowed = get_settings().security.local_account.allowed_email_domains
    if allowed and email_domain(email).lower() not in allowed:
        raise errors.BadRequest(f"E-mail addresses of the domain '{email_domain(email)}' are not allowed here")


def signup(email: str, password: str) -> int:
    """Create an unverified local account and mail its activation link; returns the user id."""
    settings = get_settings()
    if settings.security.local_account.mode != "enabled":
        raise errors.MethodNotAllowed("Signing up is disabled on this server")
    _check_domain(email)
    if find_local(email) is not None:
        raise errors.BadRequest("A local account with this e-mail address already exists")
    user = User(next_id("user"), user_type="local", email=email, login_key=local_login_key(email),
                password_hash=passwords.hash_password(password), is_admin=False, is_verified=False)
    try:
        with transact_write() as tx:
            tx.save(Login(local_login_key(email), user_id=user.id), condition=Login.login_key.does_not_exist())
            tx.save(user, condition=User.id.does_not_exist())
    except TransactWriteError:
        raise errors.BadRequest("A local account with this e-mail address already exists") from None
    send_activation(user)
    return int(user.id)


def send_activation(user: User) -> None:
    token = email_tokens.make(email_tokens.ACTIVATION,
                              {"old_email": user.email, "new_email": None, "uid": int(user.id)})
    mail.send_activation_email(user.email, token)


def resend_activation(user: User) -> None:
    if user.is_verified:
        raise errors.BadRequest("This account is already verified")
    send_activation(user)


def activate(token: str) -> None:
    """Verify an account, or complete an e-mail change when the token carries a new address.

    Each link works once (``email_tokens`` says how): a plain activation is refused once the
    account is verified, a change link once the account's address changed after it was mailed.
    """
    claims = email_tokens.read(token, email_tokens.ACTIVATION)
    old_email, new_email = claims.get("old_email"), claims.get("new_email")
    user = find_local(old_email) if isinstance(old_email, str) else None
    uid = claims.get("uid")  # absent only in plain activation links mailed before it was added
    if user is None or (uid is not None and uid != int(user.id)):
        # the account of the link is gone, or has moved away and another one took its address
        raise errors.BadRequest("There is no account with this e-mail address (any more)")
    if not new_email:
        try:
            user.update(actions=[User.is_verified.set(True)], condition=User.is_verified == False)  # noqa: E712
        except UpdateError:
            raise errors.BadRequest("This account is already verified") from None
        return
    changes = claims.get("ev")
    if uid is None or not isinstance(changes, int) or changes != _email_changes(user):
        raise errors.BadRequest(LINK_SPENT)
    _move_email(user, new_email, changes=changes)


def _email_changes(user: User) -> int:
    return int(user.email_changes or 0)


def _move_email(user: User, new_email: str, *, changes: int | None = None) -> None:
    """Give the account its new address (and verify it); ``changes``: the count of address changes
    the account must still be at (an e-mail-change link's ``ev``), None for any."""
    old_key, new_key = local_login_key(user.email), local_login_key(new_email)
    still = User.email == user.email
    if changes is not None:
        at_count = User.email_changes == changes
        if changes == 0:
            at_count |= User.email_changes.does_not_exist()
        still &= at_count
    try:
        with transact_write() as tx:
            tx.save(Login(new_key, user_id=user.id), condition=Login.login_key.does_not_exist())
            tx.delete(Login(old_key), condition=Login.user_id == user.id)
            tx.update(user, actions=[User.email.set(new_email), User.login_key.set(new_key),
                                     User.is_verified.set(True), User.email_changes.add(1)],
                      condition=still)
    except TransactWriteError as exc:
        reasons = exc.cancellation_reasons or []
        if len(reasons) == 3 and reasons[2] is not None:
            raise errors.BadRequest(LINK_SPENT) from None  # the account changed: a concurrent use won
        # §12.10: upstream answers 500 when the new address was taken meanwhile
        raise errors.BadRequest("This e-mail address is already used by another account") from None


def session_name(user_agent: str | None) -> str:
    """What a login's session is called in the token list: the browser's User-Agent, shortened."""
    return (user_agent or "").strip()[:256] or UNKNOWN_DEVICE


def admin_scope(scope: str, *, is_admin: bool) -> bool:
    """Whether a login's OAuth2 ``scope`` asks for an admin session (spec §3.2, §3.4): 400 for an
    unknown scope, or for ``admin`` when the account has no admin privileges."""
    scopes = scope.split()
    unknown = [s for s in scopes if s != "admin"]
    if unknown:
        raise errors.BadRequest(f"Unknown scope: {' '.join(unknown)}")
    admin = "admin" in scopes
    if admin and not is_admin:
        raise errors.BadRequest("This account has no admin privileges")
    return admin


def login(*, username: str, password: str, scope: str, user_agent: str | None) -> str:
    """Check a local login and open a session; returns the session secret (set as cookie)."""
    try:
        email = normalise_email(username)
    except ValueError:
        raise errors.Unauthorized("Incorrect e-mail address or password",
                                  headers={"WWW-Authenticate": "Bearer"}) from None
    user = find_local(email)
    if not passwords.verify(user.password_hash if user else None, password) or user is None:
        raise errors.Unauthorized("Incorrect e-mail address or password", headers={"WWW-Authenticate": "Bearer"})
    admin = admin_scope(scope, is_admin=bool(user.is_admin))
    if passwords.needs_rehash(user.password_hash):
        user.update(actions=[User.password_hash.set(passwords.hash_password(password))])
    return tokens.issue_session(user, name=session_name(user_agent), admin=admin).secret


def request_password_reset(email: str) -> None:
    """Mail a reset link if a local, non-provisioned account has this address; silent otherwise."""
    try:
        email = normalise_email(email)
    except ValueError:
        raise errors.BadRequest("This is not a valid e-mail address") from None
    user = find_local(email)
    if user is None or user.provision_number is not None:
        return
    token = email_tokens.make(email_tokens.PASSWORD_RESET, {
        "email": user.email, "uid": int(user.id), "pw": email_tokens.password_fingerprint(user.password_hash),
    })
    mail.send_password_reset_email(user.email, token)


def reset_password(token: str, new_password: str) -> None:
    """Set a new password with a reset link (once: the link names the password hash it replaces)
    and sign out every session and API token of the account."""
    claims = email_tokens.read(token, email_tokens.PASSWORD_RESET)
    email = claims.get("email")
    user = find_local(email) if isinstance(email, str) else None
    if user is None or user.provision_number is not None or claims.get("uid") != int(user.id):
        raise errors.BadRequest("There is no account with this e-mail address (any more)")
    fingerprint = claims.get("pw")
    if not isinstance(fingerprint, str) or not hmac.compare_digest(
            fingerprint, email_tokens.password_fingerprint(user.password_hash)):
        raise errors.Unauthorized("This link was used already or has expired")
    try:
        user.update(actions=[User.password_hash.set(passwords.hash_password(new_password))],
                    condition=User.password_hash == user.password_hash)
    except UpdateError:
        raise errors.Unauthorized("This link was used already or has expired") from None  # by a concurrent request
    tokens.revoke_all(int(user.id))


def _confirm_password(user: User, password: str) -> None:
    if not passwords.verify(user.password_hash, password):
        raise errors.Forbidden("The password is wrong")


def change_email(user: User, *, new_email: str, password: str) -> None:
    """Mail a confirmation link to the new address; the change completes through /activate."""
    _confirm_password(user, password)
    _check_domain(new_email)
    if find_local(new_email) is not None:
        raise errors.BadRequest("This e-mail address is already used by another account")
    token = email_tokens.make(email_tokens.ACTIVATION, {
        "old_email": user.email, "new_email": new_email, "uid": int(user.id), "ev": _email_changes(user),
    })
    mail.send_email_change_email(new_email, token)


def change_password(user: User, *, current: Token, new_password: str, password: str) -> str | None:
    """Set a new password and sign out every other session and API token of the account.

    ``current``, the token of the request, stays; returns its new secret (for the ``token``
    cookie) when it is a session, which gets a new secret as a rotation gives it, else None.
    """
    _confirm_password(user, password)
    user.update(actions=[User.password_hash.set(passwords.hash_password(new_password))])
    return tokens.revoke_all_but(current)


# ------------------------------------------------------------------------------------------
# Account-wide operations
# ------------------------------------------------------------------------------------------


def accept_tos(user: User, *, tos_id: int, tos_version: int) -> None:
    tos = get_settings().terms_of_services.get(tos_id)
    if tos is None or tos_version > tos.version or tos_version < 1:
        raise errors.BadRequest("There are no such terms of service (in this version)")
    accepted = dict(user.accepted_tos or {})
    accepted[str(tos_id)] = tos_version
    user.update(actions=[User.accepted_tos.set(accepted)])


def new_api_token(user: User, *, name: str) -> str:
    if user.user_type == "local" and not get_settings().security.local_account.allow_creation_of_api_tokens:
        raise errors.BadRequest("Creating API tokens is disabled for local accounts on this server")
    if user.user_type == "oidc":
        from . import oidc

        if not oidc.api_tokens_allowed(user):
            raise errors.BadRequest("Creating API tokens is disabled for accounts of your identity provider")
    if user.user_type == "ldap":
        from . import ldap_login

        if not ldap_login.may_create_api_tokens(user):
            raise errors.BadRequest("Creating API tokens is disabled for accounts of your LDAP directory")
    return tokens.issue_api_token(user, name=name).secret


def delete_user(user: User) -> None:
    """Delete the account and everything of it: jobs with audio and transcripts, settings, tokens."""
    from . import jobs

    jobs.delete_all_of_user(int(user.id))
    tokens.revoke_all(int(user.id))
    keys = [user.login_key]
    if user.provision_number is not None:
        keys.append(provision_key(int(user.provision_number)))
    for key in keys:
        try:
            Login(key).delete(condition=Login.user_id == user.id)
        except DeleteError:
            pass  # the key belongs to someone else (or is gone already)
    user.delete()


# ------------------------------------------------------------------------------------------
# Provisioning (spec §9: created/updated from config at every start)
# ------------------------------------------------------------------------------------------


def provision_users() -> list[int]:
    """Create or update the accounts of ``security.local_account.user_provisioning``; returns ids."""
    ids = []
    for number, entry in sorted(get_settings().security.local_account.user_provisioning.items()):
        try:
            email = normalise_email(entry.email)
        except ValueError as exc:
            raise ConfigError(f"security.local_account.user_provisioning.{number}.email: {exc}") from None
        ids.append(_provision_one(number, email, entry.password, entry.is_admin))
    return ids


def _provision_one(number: int, email: str, password: str, is_admin: bool) -> int:
    key = provision_key(number)
    try:
        user = User.get(Login.get(key, consistent_read=True).user_id, consistent_read=True)
    except DoesNotExist:
        user = None
    if user is None:
        if find_local(email) is not None:
            raise ConfigError(f"security.local_account.user_provisioning.{number}.email: "
                              f"{email} already belongs to a local account that is not provisioned")
        user = User(next_id("user"), user_type="local", email=email, login_key=local_login_key(email),
                    password_hash=passwords.hash_password(password), is_admin=is_admin, is_verified=True,
                    provision_number=number)
        with transact_write() as tx:
            tx.save(Login(key, user_id=user.id), condition=Login.login_key.does_not_exist())
            tx.save(Login(local_login_key(email), user_id=user.id), condition=Login.login_key.does_not_exist())
            tx.save(user, condition=User.id.does_not_exist())
        log.info("provisioned user %s (%s)", user.id, email)
        return int(user.id)
    if user.email != email:
        try:
            _move_email(user, email)
        except errors.BadRequest:
            raise ConfigError(f"security.local_account.user_provisioning.{number}.email: "
                              f"{email} already belongs to another local account") from None
    actions: list[Action] = [User.is_admin.set(is_admin), User.is_verified.set(True)]
    if not passwords.verify(user.password_hash, password):
        actions.append(User.password_hash.set(passwords.hash_password(password)))
    user.update(actions=actions)
    return int(user.id)
