"""/api/about and /api/auth_settings."""
from __future__ import annotations

from .. import version
from ..schemas.general import (
    AboutResponse, AuthSettingsResponse, ImprintResponse, LocalAccountResponse, ProviderResponse, SiteBannerResponse,
    TosResponse,
)
from ..settings import get_settings
from ..store.banners import all_banners
from .banners import safe_banner_html


def about() -> AboutResponse:
    settings = get_settings()
    banners = sorted(all_banners(), key=lambda b: (-int(b.urgency), int(b.id)))
    return AboutResponse(
        description=version.DESCRIPTION,
        source_code=version.SOURCE_CODE,
        version=version.VERSION,
        git_hash=version.git_hash(),
        imprint=ImprintResponse(**settings.imprint.model_dump()) if settings.imprint else None,
        terms_of_services={k: TosResponse(**v.model_dump()) for k, v in settings.terms_of_services.items()},
        job_retention_in_days=settings.cleanup.finished_job_retention_in_days,
        site_banners=[SiteBannerResponse(id=int(b.id), html=safe_banner_html(b.html), urgency=int(b.urgency)) for b in banners],
    )


def auth_settings() -> AuthSettingsResponse:
    local = get_settings().security.local_account
    return AuthSettingsResponse(
        local_account=LocalAccountResponse(
            mode=local.mode,
            allowed_email_domains=list(local.allowed_email_domains),
            allow_creation_of_api_tokens=local.allow_creation_of_api_tokens,
        ),
        oidc_providers={
            name: ProviderResponse(hidden=p.hidden, icon_url=p.icon_url,
                                   allow_creation_of_api_tokens=p.allow_creation_of_api_tokens)
            for name, p in get_settings().security.oidc_providers.items()
        },
        ldap_providers={
            name: ProviderResponse(hidden=p.hidden, icon_url=p.icon_url,
                                   allow_creation_of_api_tokens=p.allow_creation_of_api_tokens)
            for name, p in get_settings().security.ldap_providers.items()
        },
    )
