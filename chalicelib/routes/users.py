from __future__ import annotations

from ..auth import CLEAR_COOKIE
from ..schemas.users import AcceptTosQuery, TokenIdQuery, TokenInfoResponse, TokenNameQuery, UserResponse
from ..services import accounts, tokens
from ._http import Call, Router

router = Router(__name__, prefix="/api/users", tag="users")

SUCCESS = "Success"


@router.route("/invalidate_token", "DELETE", gate="user", query=TokenIdQuery, response=str)
def invalidate_token(call: Call) -> str:
    """Invalidate one of your tokens by its id.

    Works for session and API tokens. An unknown id, or the id of someone else's token, changes
    nothing and still answers "Success".
    """
    tokens.revoke_by_id(int(call.principal.user.id), call.query.token_id)
    return SUCCESS


@router.route("/invalidate_all_tokens", "DELETE", gate="user", response=str)
def invalidate_all_tokens(call: Call) -> str:
    """Invalidate all your tokens, including the one of this request and every API token."""
    tokens.revoke_all(int(call.principal.user.id))
    return SUCCESS


@router.route("/logout", "DELETE", gate="user", response=str)
def logout(call: Call) -> str:
    """Invalidate the token of this request and clear the ``token`` cookie."""
    tokens.revoke(call.principal.token)
    call.set_cookie = CLEAR_COOKIE
    return SUCCESS


@router.route("/get_new_api_token", "POST", gate="user+V", query=TokenNameQuery, response=str,
              errors={400: "Creating API tokens is disabled for this kind of account"})
def get_new_api_token(call: Call) -> str:
    """Create a long-lived API token for scripts; it is shown only this once.

    API tokens never expire and never carry admin privileges. ``name`` labels the device or script.
    """
    return accounts.new_api_token(call.principal.user, name=call.query.name)


@router.route("/get_all_token_info", "GET", gate="user", response=list[TokenInfoResponse])
def get_all_token_info(call: Call) -> list[TokenInfoResponse]:
    """All your unexpired tokens (never their secrets), most recently used first."""
    return accounts.token_infos(call.principal.user)


@router.route("/info", "GET", gate="user", response=UserResponse)
def info(call: Call) -> UserResponse:
    """Information about your account; 401 means you are not logged in."""
    return accounts.user_info(call.principal.user)


@router.route("/accept_tos", "POST", gate="user", query=AcceptTosQuery, response=str,
              errors={400: "No terms of service with this id and version"})
def accept_tos(call: Call) -> str:
    """Accept a version of the terms of service with the given id."""
    accounts.accept_tos(call.principal.user, tos_id=call.query.tos_id, tos_version=call.query.tos_version)
    return SUCCESS


@router.route("/delete", "DELETE", gate="user-not-provisioned", response=str,
              errors={403: "Accounts provisioned by the server's configuration cannot be deleted"})
def delete(call: Call) -> str:
    """Delete your account and everything belonging to it: jobs, audio, transcripts, settings, tokens."""
    accounts.delete_user(call.principal.user)
    call.set_cookie = CLEAR_COOKIE
    return SUCCESS
