from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ImprintResponse(BaseModel):
    name: str
    email: str | None = None
    url: str | None = None
    additional_imprint_html: str | None = None


class TosResponse(BaseModel):
    name: str
    version: int
    tos_html: str


class SiteBannerResponse(BaseModel):
    id: int
    html: str
    urgency: int


class AboutResponse(BaseModel):
    description: str
    source_code: str
    version: str
    git_hash: str
    imprint: ImprintResponse | None
    terms_of_services: dict[int, TosResponse]
    job_retention_in_days: int | None
    site_banners: list[SiteBannerResponse]


class LocalAccountResponse(BaseModel):
    mode: Literal["enabled", "no_signup", "no_signup_hidden", "disabled"]
    allowed_email_domains: list[str]
    allow_creation_of_api_tokens: bool


class ProviderResponse(BaseModel):
    hidden: bool
    icon_url: str | None
    allow_creation_of_api_tokens: bool


class AuthSettingsResponse(BaseModel):
    local_account: LocalAccountResponse
    oidc_providers: dict[str, ProviderResponse]
    ldap_providers: dict[str, ProviderResponse]
