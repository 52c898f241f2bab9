from __future__ import annotations

from ..auth import session_cookie
from ..schemas.users import LoginForm
from ..services import ldap_login, throttles
from ._http import Call, Router

router = Router(__name__, prefix="/api/ldap", tag="ldap", precondition=ldap_login.ldap_enabled)


@router.route("/login/{idp_name}", "POST", gate=None, body=LoginForm, body_format="form", response=str,
              errors={400: "No LDAP provider with this name, an unknown scope, or admin scope for a non-admin",
                      401: "Wrong user name or password, or the directory has no single entry with a uid and mail",
                      429: "Too many attempts from this address, or failed ones for this account (Retry-After)",
                      503: "The LDAP directory cannot be reached"})
def login(call: Call, idp_name: str) -> str:
    """Log in with the user name and password of an LDAP directory (OAuth2 password form).

    ``idp_name`` is the provider's name exactly as configured (see ``/api/auth_settings``). The
    session token is set as the ``token`` cookie, not returned in the body. Admins (found by the
    provider's admin query) send ``scope=admin`` to get a session with admin privileges. The
    ``User-Agent`` header names the session in the token list.
    """
    form: LoginForm = call.body
    with throttles.login(call.request, f"ldap#{idp_name}#{form.username}"):
        secret = ldap_login.login(provider_name=idp_name, username=form.username, password=form.password,
                                  scope=form.scope, user_agent=call.header("user-agent"))
    call.set_cookie = session_cookie(secret)
    return "You are logged in; your session token was set as the cookie 'token'"
