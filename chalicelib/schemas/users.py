from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from .common import EmailValidated, FormModel, PasswordValidated, RequestModel


UserType = Literal["local", "ldap", "oidc"]


class UserResponse(BaseModel):
    id: int
    email: str
    accepted_tos: dict[int, int]
    provider_name: str
    user_type: UserType
    is_verified: bool


class TokenInfoResponse(BaseModel):
    id: int
    name: str
    admin_privileges: bool
    explicit: bool
    expires_at: datetime | None
    last_usage: datetime


class TokenIdQuery(BaseModel):
    token_id: int


class TokenNameQuery(BaseModel):
    name: str


class AcceptTosQuery(BaseModel):
    tos_id: int
    tos_version: int


class LoginForm(FormModel):
    """OAuth2 password form (``application/x-www-form-urlencoded``)."""

    grant_type: str | None = Field(default=None, pattern=r"^password$")
    username: str
    password: str = Field(json_schema_extra={"format": "password"})
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = Field(default=None, json_schema_extra={"format": "password"})


class SignupRequest(RequestModel):
    email: EmailValidated
    password: PasswordValidated


class ActivateQuery(BaseModel):
    token: str


class EmailQuery(BaseModel):
    email: str


class PasswordResetRequest(RequestModel):
    token: str
    new_password: PasswordValidated


class ChangeEmailRequest(RequestModel):
    new_email: EmailValidated
    password: str


class ChangePasswordRequest(RequestModel):
    new_password: PasswordValidated
    password: str
