from __future__ import annotations

from ..auth import session_cookie
from ..schemas.users import (
    ActivateQuery, ChangeEmailRequest, ChangePasswordRequest, EmailQuery, LoginForm, PasswordResetRequest,
    SignupRequest,
)
from ..services import accounts, throttles
from ._http import Call, Router

router = Router(__name__, prefix="/api/local-account", tag="local-account",
                precondition=accounts.local_accounts_enabled)

SUCCESS = "Success"


@router.route("/login", "POST", gate=None, body=LoginForm, body_format="form", response=str,
              errors={400: "Unknown scope, or admin scope for a non-admin", 401: "Wrong e-mail address or password",
                      429: "Too many attempts from this address, or failed ones for this account (Retry-After)"})
def login(call: Call) -> str:
    """Log in with e-mail address and password (OAuth2 password form).

    The session token is set as the ``token`` cookie, not returned in the body. Send
    ``scope=admin`` to get a session with admin privileges (admins only). The ``User-Agent``
    header names the session in the token list.
    """
    form: LoginForm = call.body
    with throttles.login(call.request, form.username):
        secret = accounts.login(username=form.username, password=form.password, scope=form.scope,
                                user_agent=call.header("user-agent"))
    call.set_cookie = session_cookie(secret)
    return "You are logged in; your session token was set as the cookie 'token'"


@router.route("/signup", "POST", gate=None, body=SignupRequest, response=str,
              errors={400: "Domain not allowed, or an account with this address exists",
                      405: "Signing up is disabled", 429: "Too many sign-ups from this address or for this account"})
def signup(call: Call) -> str:
    """Create a local account; an activation link is mailed to the address. Does not log in."""
    body: SignupRequest = call.body
    throttles.signup(call.request, body.email)
    user_id = accounts.signup(body.email, body.password)
    return f"Account {user_id} created; please activate it with the link we sent to {body.email}"


@router.route("/activate", "POST", gate=None, query=ActivateQuery, response=str,
              errors={400: "No such account, already verified, or link used", 401: "Invalid or expired link"})
def activate(call: Call) -> str:
    """Confirm an e-mail address with the token from an activation or e-mail-change link."""
    accounts.activate(call.query.token)
    return SUCCESS


@router.route("/resend_activation_email", "GET", gate="local", response=str,
              errors={400: "The account is already verified", 403: "Not a local, self-managed account",
                      429: "Too many activation mails (Retry-After)"})
def resend_activation_email(call: Call) -> str:
    """Send a fresh activation link to your address."""
    throttles.activation_mail(call.request, call.principal.user.email)
    accounts.resend_activation(call.principal.user)
    return f"A new activation link was sent to {call.principal.user.email}"


@router.route("/request_password_reset", "GET", gate=None, query=EmailQuery, response=str,
              errors={400: "Not a valid e-mail address", 429: "Too many reset requests (Retry-After)"})
def request_password_reset(call: Call) -> str:
    """Mail a password reset link, if a local account has this address.

    The answer is the same, and takes the same time, whether or not such an account exists.
    """
    with throttles.constant_time():
        throttles.password_reset(call.request, call.query.email)
        accounts.request_password_reset(call.query.email)
    return "If a local account with this address exists, a password reset link was sent to it"


@router.route("/reset_password", "POST", gate=None, body=PasswordResetRequest, response=str,
              errors={400: "No account with this address", 401: "Invalid, expired or used link"})
def reset_password(call: Call) -> str:
    """Set a new password with the token from a password reset link (valid 24 hours, once).

    Every session and API token of the account is signed out.
    """
    body: PasswordResetRequest = call.body
    accounts.reset_password(body.token, body.new_password)
    return SUCCESS


@router.route("/change_user_email", "POST", gate="local", body=ChangeEmailRequest, response=str,
              errors={400: "Domain not allowed, or address already used", 403: "Wrong password"})
def change_user_email(call: Call) -> str:
    """Change your address: a confirmation link goes to the new one; the change takes effect when it is used."""
    body: ChangeEmailRequest = call.body
    accounts.change_email(call.principal.user, new_email=body.new_email, password=body.password)
    return f"A confirmation link was sent to {body.new_email}; your address changes once you open it"


@router.route("/change_user_password", "POST", gate="local", body=ChangePasswordRequest, response=str,
              errors={403: "Wrong password"})
def change_user_password(call: Call) -> str:
    """Change your password (your current password confirms it is you).

    Every other session and API token of the account is signed out. The session of this request
    stays signed in with a new token, set as the ``token`` cookie as a rotation sets it.
    """
    body: ChangePasswordRequest = call.body
    secret = accounts.change_password(call.principal.user, current=call.principal.token,
                                      new_password=body.new_password, password=body.password)
    if secret is not None:
        call.set_cookie = session_cookie(secret)
    return "Your password was changed; your other sessions and API tokens were signed out"
