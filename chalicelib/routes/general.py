from __future__ import annotations

from ..schemas.general import AboutResponse, AuthSettingsResponse
from ..services import general
from ._http import Call, Router

router = Router(__name__, prefix="/api", tag="general")


@router.route("/about", "GET", gate=None, response=AboutResponse)
def about(call: Call) -> AboutResponse:
    """Information about this Wisp instance.

    Description, source code URL, version, imprint, terms of service, job retention and the site
    banners (highest urgency first). No authentication needed.
    """
    return general.about()


@router.route("/auth_settings", "GET", gate=None, response=AuthSettingsResponse)
def auth_settings(call: Call) -> AuthSettingsResponse:
    """Which login methods this instance offers; the frontend builds its login page from this."""
    return general.auth_settings()
