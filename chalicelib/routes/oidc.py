from __future__ import annotations

from chalice import Response

from ..auth import session_cookie
from ..services import oidc
from ..settings import get_settings
from ._http import Call, Router

router = Router(__name__, prefix="/api/oidc", tag="oidc", precondition=oidc.section_enabled)


@router.route("/login/{idp_name}", "GET", gate=None, response=None, name="oidc-redirect",
              errors={400: "No identity provider of this name",
                      503: "The identity provider cannot be reached"})
def oidc_redirect(call: Call, idp_name: str) -> Response:
    """Start an OIDC login: redirects the browser (302) to the identity provider's login page.

    ``idp_name`` is the provider's name as configured, in any case (see ``/api/auth_settings``).
    The login's state lives in a short-lived, HttpOnly cookie that only the callback reads.
    """
    started = oidc.start_login(idp_name)
    return Response(body="", status_code=302,
                    headers={"Location": started.location, "Set-Cookie": started.set_cookie,
                             "Cache-Control": "no-store"})


@router.route("/auth/{idp_name}", "GET", gate=None, response=None, name="oidc-auth",
              errors={400: "Unknown provider, no matching login in progress, or the code exchange failed",
                      401: "The ID token is invalid",
                      403: "The provider sent no verified e-mail address, no refresh token, or the user lacks the role",
                      503: "The identity provider cannot be reached"})
def oidc_auth(call: Call, idp_name: str) -> Response:
    """Where the identity provider sends the browser back after its login page.

    Checks the answer, creates the account on the first login (or updates its e-mail address),
    opens a session and redirects (307) to the frontend with the session as the ``token`` cookie.
    A user with the provider's admin role gets a session with admin privileges.
    """
    secret = oidc.finish_login(idp_name, query=dict(call.request.query_params or {}),
                               cookie_header=call.header("cookie"), user_agent=call.header("user-agent"))
    cleared = oidc.clear_flow_cookie(oidc.provider(idp_name))
    return Response(body="", status_code=307,
                    headers={"Location": get_settings().client_url, "Set-Cookie": [session_cookie(secret), cleared],
                             "Cache-Control": "no-store"})
