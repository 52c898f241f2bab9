"""Operator configuration and deployment environment.

Two sources, kept apart on purpose:

* ``Environment`` — where the AWS resources are (table prefix, bucket, region, local endpoint).
  These are infra outputs, read from environment variables. PynamoDB reads table names when a
  model class is created, so they must be known at import time.
* ``Settings`` — the operator's choices (spec §9), read from one YAML file whose path is in
  ``WISP_CONFIG``. The same file format is used by ``make run`` and by a deployed stack. Values may
  be taken from environment variables with ``!ENV ${VAR}`` or ``!ENV ${VAR:default}``.

A bad file fails at start with a ``ConfigError`` whose message names the offending key.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_CONFIG_PATH = "WISP_CONFIG"
ENV_SECRET_KEY = "WISP_SECRET_KEY"
ENV_SECRET_KEY_ARN = "WISP_SECRET_KEY_ARN"
ENV_TABLE_PREFIX = "WISP_TABLE_PREFIX"
ENV_BUCKET = "WISP_BUCKET"
ENV_ENDPOINT = "WISP_AWS_ENDPOINT_URL"
ENV_KMS_KEY = "WISP_KMS_KEY_ID"
ENV_TOKEN_KMS_KEY = "WISP_TOKEN_KMS_KEY_ID"

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "default-config.yml"


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid."""


# --------------------------------------------------------------------------------------------
# Environment (infra outputs)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Environment:
    table_prefix: str  # every DynamoDB table is named "<prefix>-<name>"
    bucket: str  # S3 bucket for audio and transcripts
    region: str
    endpoint_url: str | None  # set only for the local stack (moto server)
    kms_key_id: str | None  # SSE-KMS key for S3; None → SSE-S3 (AES256)
    # KMS key that encrypts the IdPs' refresh tokens; None → AES-GCM with a key derived from the secret key
    token_kms_key_id: str | None = None


def environment() -> Environment:
    return Environment(
        table_prefix=os.environ.get(ENV_TABLE_PREFIX, "wisp"),
        bucket=os.environ.get(ENV_BUCKET, "wisp-local"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-central-1",
        endpoint_url=os.environ.get(ENV_ENDPOINT) or None,
        kms_key_id=os.environ.get(ENV_KMS_KEY) or None,
        token_kms_key_id=os.environ.get(ENV_TOKEN_KMS_KEY) or None,
    )


# --------------------------------------------------------------------------------------------
# Operator settings (spec §9, the parts that make sense on AWS)
# --------------------------------------------------------------------------------------------

_CLIENT_URL = re.compile(r"^https?://[^/\s?#]+(/[^\s?#]*)?(/#)?$")
_DOMAIN = re.compile(r"^([a-zA-Z0-9-]+\.)+[a-zA-Z0-9-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProvisionedUser(_Strict):
    email: str  # login address of the provisioned account
    password: Annotated[str, Field(min_length=12)]  # re-applied at every start
    is_admin: bool = False


class LocalAccountSettings(_Strict):
    mode: Literal["enabled", "no_signup", "no_signup_hidden", "disabled"] = "enabled"
    allowed_email_domains: list[str] = []  # exact domain match; empty = any domain
    allow_creation_of_api_tokens: bool = True
    user_provisioning: dict[int, ProvisionedUser] = {}  # provision number → account

    @field_validator("allowed_email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        for domain in value:
            if not _DOMAIN.match(domain):
                raise ValueError(f"{domain!r} is not a domain name")
        return [d.lower() for d in value]


class TokenSettings(_Strict):
    session_expiration_time_minutes: Annotated[int, Field(ge=15)] = 60
    rolling_session_before_expiration_minutes: Annotated[int, Field(ge=5)] = 10

    @model_validator(mode="after")
    def _window(self) -> "TokenSettings":
        if self.rolling_session_before_expiration_minutes > 0.4 * self.session_expiration_time_minutes:
            raise ValueError(
                "rolling_session_before_expiration_minutes must be at most 0.4 × session_expiration_time_minutes"
            )
        return self


class OidcRole(_Strict):
    name: str  # the role's value
    field_name: str  # the claim that holds it (a string, or a list of strings)


class OidcClaimMap(_Strict):
    email: str = "email"  # the claim with the user's address
    email_verified: str = "email_verified"  # the claim that says it is verified (true or "true")


# authorization request parameters that the login flow sets itself
_OIDC_RESERVED_PARAMS = frozenset({"client_id", "response_type", "redirect_uri", "scope", "state", "nonce",
                                   "code_challenge", "code_challenge_method"})


def _exactly_one(model: BaseModel, first: str, second: str) -> None:
    """A model's "exactly one of the two keys" rule."""
    if (getattr(model, first) is None) == (getattr(model, second) is None):
        raise ValueError(f"exactly one of {first} and {second} must be set")


class ProviderSettings(_Strict):
    """What every identity provider has (spec §9's common provider fields)."""

    hidden: bool = False  # not shown on the login page, still usable
    icon_url: str | None = None  # shown on the provider's login button
    allow_creation_of_api_tokens: bool = True  # whether this provider's users may create API tokens
    ca_pem_file_path: str | None = None  # extra CA bundle (PEM) for TLS to the provider

    @field_validator("ca_pem_file_path")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"{value} is not a readable file")
        return value


class OidcProviderSettings(ProviderSettings):
    """One OpenID Connect identity provider (spec §9; key names as upstream's, plus ``client_secret_arn``)."""

    base_url: str  # the issuer; discovery at <base_url>/.well-known/openid-configuration
    client_id: str
    # the client secret itself, or (deployed stacks) the ARN/name of a Secrets Manager secret holding it:
    # exactly one of the two; never put it in a Lambda's environment
    client_secret: str | None = None
    client_secret_arn: str | None = None
    client_auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    additional_authorize_params: dict[str, str] = {}  # e.g. prompt: consent, access_type: offline
    scopes: list[str] = ["email"]  # "openid" is always added
    claim_map: OidcClaimMap = OidcClaimMap()
    enable_pkce_s256_challenge: bool = True
    user_role: OidcRole | None = None  # if set, only users with this role may log in
    admin_role: OidcRole | None = None  # users with this role log in as admins

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", value):
            raise ValueError("must be an http(s) URL without query or fragment")
        return value.rstrip("/")

    @field_validator("additional_authorize_params")
    @classmethod
    def _params(cls, value: dict[str, str]) -> dict[str, str]:
        taken = sorted(set(value) & _OIDC_RESERVED_PARAMS)
        if taken:
            raise ValueError(f"{', '.join(taken)} are set by the login flow itself")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> "OidcProviderSettings":
        _exactly_one(self, "client_secret", "client_secret_arn")
        return self


def oidc_provider_key(name: str) -> str:
    """How a provider's name appears in its URLs (spec §3.3: lower-cased and trimmed)."""
    return name.strip().lower()


# LDAP providers (spec §3.4, §9; upstream's key names, plus ``password_secret_arn`` and
# ``start_tls``). Checked at start: a wrong URL, attribute name or filter fails there, with the
# key in the message, not at somebody's first login.
_LDAP_URL = re.compile(r"^(ldap|ldaps|ldapi)://", re.IGNORECASE)
_LDAP_ATTRIBUTE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)$")  # a name or an OID


def _ldap_filter(value: str) -> str:
    """The filter as configured, in parentheses; ValueError if it is not an RFC 4515 filter."""
    from ldap3.core.exceptions import LDAPInvalidFilterError
    from ldap3.operation.search import parse_filter

    text = value.strip()
    if not text.startswith("("):
        text = f"({text})"  # "objectClass=person" and "(objectClass=person)" both work
    try:
        parse_filter(text, None, auto_escape=False, auto_encode=False, validator=None, check_names=False)
    except LDAPInvalidFilterError:
        raise ValueError(f"{value!r} is not an LDAP search filter (RFC 4515)") from None
    return text


class LdapQuery(_Strict):
    base_dn: str  # the subtree searched
    filter: str  # e.g. "(objectClass=inetOrgPerson)"; the user name condition is and-ed to it

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        return _ldap_filter(value)


class LdapServiceAccount(_Strict):
    mechanism: Literal["SIMPLE", "DIGEST-MD5", "NTLM"] = "SIMPLE"
    user: str  # SIMPLE: the bind DN; DIGEST-MD5: the SASL user name; NTLM: DOMAIN\user
    # the password itself (local stack, tests) or, deployed, the ARN/name of a Secrets Manager
    # secret holding it: exactly one of the two; never put it in a Lambda's environment
    password: str | None = None
    password_secret_arn: str | None = None

    @model_validator(mode="after")
    def _one_password(self) -> "LdapServiceAccount":
        _exactly_one(self, "password", "password_secret_arn")
        return self


class LdapProviderSettings(ProviderSettings):
    """One LDAP directory whose people may log in with their LDAP user name and password.
    ``ca_pem_file_path``: the CA bundle (PEM) that signed the server's certificate."""

    server_address: str  # ldap://host[:port], ldaps://host[:port] or ldapi://
    start_tls: bool = False  # upgrade an ldap:// connection with StartTLS before any bind
    service_account_auth: LdapServiceAccount  # the account that searches for the person
    username_attributes: Annotated[list[str], Field(min_length=1)]  # the user name may match any of these
    uid_attribute: str  # a person's stable, unique id: with the provider name, it keys the account
    mail_attribute: str
    user_query: LdapQuery | None = None  # who may log in
    admin_query: LdapQuery | None = None  # who logs in as an admin (looked up first)

    @field_validator("server_address")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _LDAP_URL.match(value):
            raise ValueError("must be an ldap://, ldaps:// or ldapi:// URL")
        return value

    @field_validator("username_attributes")
    @classmethod
    def _attributes(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _LDAP_ATTRIBUTE.match(name):
                raise ValueError(f"{name!r} is not an LDAP attribute name")
        return value

    @field_validator("uid_attribute", "mail_attribute")
    @classmethod
    def _attribute(cls, value: str) -> str:
        if not _LDAP_ATTRIBUTE.match(value):
            raise ValueError(f"{value!r} is not an LDAP attribute name")
        return value

    @model_validator(mode="after")
    def _queries(self) -> "LdapProviderSettings":
        if self.user_query is None and self.admin_query is None:
            raise ValueError("at least one of user_query and admin_query must be set")
        if self.start_tls and not self.server_address.lower().startswith("ldap://"):
            raise ValueError("start_tls needs an ldap:// server_address (ldaps:// is TLS from the start)")
        return self


class SecuritySettings(_Strict):
    # 64 hex chars; deployed stacks leave it empty and name a Secrets Manager secret instead
    secret_key: str | None = None
    local_account: LocalAccountSettings = LocalAccountSettings()
    tokens: TokenSettings = TokenSettings()
    oidc_providers: dict[str, OidcProviderSettings] = {}  # display name → provider
    # display name → provider; the name is the login URL's idp_name exactly (case-sensitive)
    ldap_providers: dict[str, LdapProviderSettings] = {}

    @field_validator("oidc_providers")
    @classmethod
    def _oidc_names(cls, value: dict[str, OidcProviderSettings]) -> dict[str, OidcProviderSettings]:
        seen: dict[str, str] = {}
        for name in value:
            key = oidc_provider_key(name)
            if not key or "/" in key:
                raise ValueError(f"{name!r}: a provider name must be non-blank and contain no '/'")
            if key in seen:
                raise ValueError(f"{seen[key]!r} and {name!r} are the same name in URLs (case and spaces ignored)")
            seen[key] = name
        return value

    @field_validator("ldap_providers")
    @classmethod
    def _ldap_names(cls, value: dict[str, LdapProviderSettings]) -> dict[str, LdapProviderSettings]:
        for name in value:
            if not name.strip() or "/" in name:
                raise ValueError(f"{name!r}: a provider name must be non-blank and contain no '/'")
        return value

    @model_validator(mode="after")
    def _some_login_method(self) -> "SecuritySettings":
        """Spec §9: at least one way to log in."""
        if self.local_account.mode == "disabled" and not self.oidc_providers and not self.ldap_providers:
            raise ValueError("no login method: local_account.mode is disabled and no OIDC or LDAP provider is set")
        return self

    @field_validator("secret_key")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be 64 hexadecimal characters (256 bit)")
        return value


class MailSettings(_Strict):
    sender_email: str = "wisp@localhost.localdomain"  # SES-verified sender address
    echo_to_console: bool = False  # local stack: also print every mail with its links


class ImprintSettings(_Strict):
    name: str
    email: str | None = None
    url: str | None = None
    additional_imprint_html: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "ImprintSettings":
        _exactly_one(self, "url", "additional_imprint_html")
        return self


class TosSettings(_Strict):
    name: str
    version: Annotated[int, Field(ge=1)]
    tos_html: str


class CleanupSettings(_Strict):
    finished_job_retention_in_days: Annotated[int, Field(ge=1)] | None = None
    user_retention_in_days: Annotated[int, Field(ge=90)] | None = None


class LimitSettings(_Strict):
    """Per-user limits: a request that would pass one is refused with 400 and a detail naming it."""

    api_tokens_per_user: Annotated[int, Field(ge=1)] = 50  # API tokens (sessions are not counted)
    open_uploads_per_user: Annotated[int, Field(ge=1)] = 20  # unfinished direct uploads
    job_settings_per_user: Annotated[int, Field(ge=1)] = 1000  # stored job settings records
    queued_jobs_per_user: Annotated[int, Field(ge=1)] = 500  # jobs waiting in the queue for a runner


class Settings(_Strict):
    client_url: str  # frontend URL, normally ending in "/#"; used in mail links
    security: SecuritySettings = SecuritySettings()
    mail: MailSettings = MailSettings()
    imprint: ImprintSettings | None = None
    terms_of_services: dict[int, TosSettings] = {}
    cleanup: CleanupSettings = CleanupSettings()
    limits: LimitSettings = LimitSettings()

    @field_validator("client_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _CLIENT_URL.match(value):
            raise ValueError("must look like http(s)://host[:port][/path][/#]")
        return value.rstrip("/") if not value.endswith("/#") else value

    @property
    def secret_key(self) -> bytes:
        return bytes.fromhex(_secret_key_hex(self.security.secret_key))


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

# ``!ENV ${NAME}`` with NAME unset but NAME_SECRET_ARN set reads the value from that secret
SECRET_ARN_SUFFIX = "_SECRET_ARN"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def env_constructor(loader: Any, node: Any) -> str:
        raw = loader.construct_scalar(node)

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if os.environ.get(f"{name}{SECRET_ARN_SUFFIX}"):
                # deployed stacks: the value lives in Secrets Manager, never in a Lambda's environment
                return _plain_secret_from_secrets_manager(os.environ[f"{name}{SECRET_ARN_SUFFIX}"])
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is referenced by !ENV but not set")

        return _ENV_REF.sub(substitute, raw)

    Loader.add_constructor("!ENV", env_constructor)
    return Loader


def _describe(error: ValidationError) -> str:
    lines = []
    for err in error.errors(include_url=False):
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{key}: {err['msg']}")
    return "; ".join(lines)


def parse_settings(text: str, source: str = "<config>") -> Settings:
    """Parse and validate a configuration document (YAML)."""
    import yaml

    try:
        data = yaml.load(text, Loader=_yaml_loader()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from exc
    try:
        _secret_key_hex(settings.security.secret_key)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return settings


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    path = Path(path or os.environ.get(ENV_CONFIG_PATH) or DEFAULT_CONFIG_PATH)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
    return parse_settings(text, str(path))


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once (Lambda cold start or local start)."""
    return load_settings()


def _secret_key_hex(configured: str | None) -> str:
    if configured:
        return configured
    from_env = os.environ.get(ENV_SECRET_KEY)
    if from_env:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", from_env):
            raise ConfigError(f"security.secret_key: {ENV_SECRET_KEY} must be 64 hexadecimal characters")
        return from_env
    arn = os.environ.get(ENV_SECRET_KEY_ARN)
    if arn:
        return _secret_from_secrets_manager(arn)
    raise ConfigError(
        f"security.secret_key: not set (set it in the file, or {ENV_SECRET_KEY}, or {ENV_SECRET_KEY_ARN})"
    )


@functools.lru_cache(maxsize=4)
def _secret_from_secrets_manager(arn: str) -> str:
    from . import aws

    value = aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"].strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ConfigError("security.secret_key: the Secrets Manager secret must hold 64 hexadecimal characters")
    return value


def oidc_client_secret(provider: OidcProviderSettings) -> str:
    """The provider's client secret: from the file, or from Secrets Manager (read once per container)."""
    if provider.client_secret is not None:
        return provider.client_secret
    assert provider.client_secret_arn is not None  # the model allows no third case
    return _plain_secret_from_secrets_manager(provider.client_secret_arn)


def ldap_service_password(provider: LdapProviderSettings) -> str:
    """The service account's password: from the file, or from Secrets Manager (read once per
    container). A secret may also hold a JSON object with a ``password`` field."""
    account = provider.service_account_auth
    if account.password is not None:
        return account.password
    assert account.password_secret_arn is not None  # the model allows no third case
    value = _plain_secret_from_secrets_manager(account.password_secret_arn)
    if value.startswith("{"):
        import json

        try:
            field = json.loads(value).get("password")
        except (ValueError, AttributeError):
            field = None
        if isinstance(field, str):
            return field
    return value


@functools.lru_cache(maxsize=16)
def _plain_secret_from_secrets_manager(arn: str) -> str:
    from . import aws

    return str(aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]).strip()
