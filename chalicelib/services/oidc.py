"""OpenID Connect login (spec §3.3): the authorization code flow, with PKCE, and no server session.

Lambda keeps no state between requests, so what the callback must check (state, nonce, the PKCE
verifier) travels in a cookie that only this server can read: AES-GCM with a key derived from the
secret key (``sealing.seal_local``), ten minutes long, HttpOnly, SameSite=Lax (the IdP's redirect
back is a top-level navigation, which Lax lets through), and its Path is the provider's callback,
so it goes nowhere else and logins at two providers do not overwrite each other.

The protocol pieces come from PyJWT: ``PyJWKClient`` fetches and caches the provider's keys (and
fetches them again when an ID token names a key id it does not know: a key rotation), and
``jwt.decode`` checks signature, issuer, audience and expiry. The discovery document is cached per
container for ``DISCOVERY_LIFETIME``. The few HTTP calls (discovery, token, userinfo) use urllib.

A user is keyed by (``iss``, ``sub``); the address and the admin flag follow the IdP at every
login. The IdP's refresh token is stored encrypted on the session token (``sealing.seal_stored``:
KMS when deployed).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.update import Action

from .. import errors, sealing
from ..schemas.common import normalise_email
from ..settings import OidcProviderSettings, OidcRole, get_settings, oidc_client_secret, oidc_provider_key
from ..store.base import transact_write
from ..store.counters import next_id
from ..store.users import Login, User, oidc_login_key
from . import tokens
from .accounts import session_name

log = logging.getLogger("wisp.oidc")

FLOW_COOKIE = "wisp_oidc_flow"
FLOW_LIFETIME = 600  # seconds from the redirect to the IdP until the callback must have come
DISCOVERY_LIFETIME = 3600.0  # seconds a container keeps a provider's discovery document
JWKS_LIFETIME = 600.0  # seconds a container keeps a provider's key set (an unknown key id refetches sooner)
HTTP_TIMEOUT = 10.0
MAX_RESPONSE = 1 << 20  # bytes read from any IdP answer
# ID tokens are signed with the provider's published keys; a MAC with the client secret (HS*) or
# "none" is never accepted
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
CLOCK_LEEWAY = 60  # seconds of clock skew tolerated in exp/iat/nbf

FLOW_PURPOSE = "oidc login flow"
REFRESH_PURPOSE = "oidc refresh token"


class IdpUnreachable(Exception):
    """The identity provider did not answer, or not with what the protocol says."""


@dataclass(frozen=True)
class Provider:
    name: str  # as configured: the display name, stored as the users' provider_name
    key: str  # as in the URLs: lower-cased and trimmed
    settings: OidcProviderSettings

    @property
    def redirect_uri(self) -> str:
        """The callback's absolute URL. The API and the frontend share one origin (spec §1.1), and
        the frontend's URL is configured: so is the API's, whatever Host a proxy sends."""
        base = get_settings().client_url.removesuffix("#").rstrip("/")
        return f"{base}/api/oidc/auth/{quote(self.key, safe='')}"


# ------------------------------------------------------------------------------------------
# Providers
# ------------------------------------------------------------------------------------------


def section_enabled() -> None:
    """The OIDC routes answer like unknown paths when no provider is configured (§0)."""
    if not get_settings().security.oidc_providers:
        raise errors.NotFound()


def provider(idp_name: str) -> Provider:
    """The provider an URL names (case and surrounding spaces ignored); 400 if there is none."""
    wanted = oidc_provider_key(unquote(idp_name))
    for name, settings in get_settings().security.oidc_providers.items():
        if oidc_provider_key(name) == wanted:
            return Provider(name, wanted, settings)
    raise errors.BadRequest("There is no identity provider of this name")


def api_tokens_allowed(user: User) -> bool:
    """Whether the provider of an OIDC user lets its users create API tokens (no: provider gone)."""
    found = get_settings().security.oidc_providers.get(str(user.provider_name))
    return found is not None and found.allow_creation_of_api_tokens


# ------------------------------------------------------------------------------------------
# HTTP to the provider, and the per-container caches
# ------------------------------------------------------------------------------------------

_ssl_contexts: dict[str, ssl.SSLContext] = {}
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_clients: dict[str, Any] = {}  # jwks_uri → PyJWKClient


def reset_caches() -> None:
    """Forget every cached discovery document and key set (tests)."""
    _discovery.clear()
    _jwks_clients.clear()


def _ssl_context(p: Provider) -> ssl.SSLContext | None:
    path = p.settings.ca_pem_file_path
    if path is None:
        return None
    if path not in _ssl_contexts:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=path)  # in addition to the system's CAs
        _ssl_contexts[path] = context
    return _ssl_contexts[path]


def _http_json(p: Provider, url: str, *, form: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET (or POST ``form``) and parse the JSON answer; (status, body). Transport failures raise."""
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers={"Accept": "application/json", **(headers or {})})
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    handlers: list[Any] = []
    context = _ssl_context(p)
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=HTTP_TIMEOUT) as answer:
            status, raw = answer.status, answer.read(MAX_RESPONSE)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(MAX_RESPONSE)
        exc.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise IdpUnreachable(f"{url}: {exc}") from None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def metadata(p: Provider) -> dict[str, Any]:
    """The provider's discovery document (cached per container for ``DISCOVERY_LIFETIME``)."""
    cached = _discovery.get(p.settings.base_url)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    url = f"{p.settings.base_url}/.well-known/openid-configuration"
    status, doc = _http_json(p, url)
    needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    if status != 200 or not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in needed):
        raise IdpUnreachable(f"{url}: no usable discovery document (HTTP {status})")
    _discovery[p.settings.base_url] = (time.monotonic() + DISCOVERY_LIFETIME, doc)
    return doc


def _jwks_client(p: Provider, uri: str) -> Any:
    from jwt import PyJWKClient

    client = _jwks_clients.get(uri)
    if client is None:
        # cooldown 0: an ID token reaches us only from the token endpoint, over the back channel,
        # so only the IdP itself can name a key id we do not know; then we look at once
        client = PyJWKClient(uri, cache_jwk_set=True, lifespan=JWKS_LIFETIME, timeout=HTTP_TIMEOUT,
                             ssl_context=_ssl_context(p), cooldown_duration=0)
        _jwks_clients[uri] = client
    return client


def _idp_unreachable(p: Provider, exc: Exception) -> errors.AppError:
    log.warning("identity provider %r: %s", p.name, exc)
    _discovery.pop(p.settings.base_url, None)  # its endpoints may have moved: discover again next time
    return errors.ServiceUnavailable("The identity provider cannot be reached; please try again later")


# ------------------------------------------------------------------------------------------
# Step 1: the redirect to the provider
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    location: str
    set_cookie: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _flow_cookie(p: Provider, value: str, max_age: int) -> str:
    path = urlsplit(p.redirect_uri).path
    secure = "; Secure" if p.redirect_uri.startswith("https:") else ""
    return f"{FLOW_COOKIE}={value}; Max-Age={max_age}; Path={path}; HttpOnly; SameSite=Lax{secure}"


def clear_flow_cookie(p: Provider) -> str:
    return _flow_cookie(p, "", 0)


def start_login(idp_name: str) -> Redirect:
    """The IdP's authorization URL for a new login, and the cookie that remembers the login."""
    p = provider(idp_name)
    try:
        meta = metadata(p)
    except IdpUnreachable as exc:
        raise _idp_unreachable(p, exc) from None
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    scopes = ["openid"] + [s for s in dict.fromkeys(p.settings.scopes) if s != "openid"]
    params = {"response_type": "code", "client_id": p.settings.client_id, "redirect_uri": p.redirect_uri,
              "scope": " ".join(scopes), "state": state, "nonce": nonce}
    verifier = None
    if p.settings.enable_pkce_s256_challenge:
        verifier = secrets.token_urlsafe(64)  # 86 characters (RFC 7636: 43-128)
        params["code_challenge"] = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
        params["code_challenge_method"] = "S256"
    params.update(p.settings.additional_authorize_params)  # reserved names are refused at start
    endpoint = meta["authorization_endpoint"]
    location = endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
    flow = {"s": state, "n": nonce, "v": verifier, "e": int(time.time()) + FLOW_LIFETIME}
    sealed = sealing.seal_local(json.dumps(flow).encode(), purpose=FLOW_PURPOSE, context={"provider": p.key})
    return Redirect(location, _flow_cookie(p, sealed, FLOW_LIFETIME))


# ------------------------------------------------------------------------------------------
# Step 2: the callback
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str | None


def flow_from_cookie(cookie_header: str | None, p: Provider) -> Flow:
    """The login this browser started at this provider; 400 if there is none (any more)."""
    value = None
    for part in (cookie_header or "").split(";"):
        name, sep, content = part.strip().partition("=")
        if sep and name == FLOW_COOKIE and content:
            value = content.strip().strip('"')
    if not value:
        raise errors.BadRequest("No login in progress in this browser (or it took too long); please start again")
    try:
        data = json.loads(sealing.open_local(value, purpose=FLOW_PURPOSE, context={"provider": p.key}))
    except (sealing.Unreadable, ValueError):
        raise errors.BadRequest("The login state is invalid; please start again") from None
    if not isinstance(data, dict) or int(data.get("e", 0)) < time.time():
        raise errors.BadRequest("The login took too long; please start again")
    return Flow(str(data["s"]), str(data["n"]), data.get("v"))


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str
    is_admin: bool


def finish_login(idp_name: str, *, query: dict[str, str], cookie_header: str | None,
                 user_agent: str | None) -> str:
    """Check the IdP's answer, create or update the user and open a session; returns its secret.

    400: unknown provider, no or another login in progress (state), or the code exchange failed;
    401: the ID token is invalid; 403: the IdP did not vouch for what we need (a verified address,
    a refresh token, the user role).
    """
    p = provider(idp_name)
    flow = flow_from_cookie(cookie_header, p)
    if "error" in query:
        raise errors.BadRequest(f"The identity provider did not log you in: {query.get('error_description') or query['error']}")
    if not hmac.compare_digest(query.get("state", "").encode(), flow.state.encode()):
        raise errors.BadRequest("The login state does not match; please start again")
    code = query.get("code")
    if not code:
        raise errors.BadRequest("The identity provider sent no authorization code")
    try:
        meta = metadata(p)
        answer = _exchange(p, meta, code, flow.verifier)
        identity, refresh_token = _identity(p, meta, answer, flow.nonce)
    except IdpUnreachable as exc:
        raise _idp_unreachable(p, exc) from None
    user = _account(p, identity)
    sealed = sealing.seal_stored(refresh_token.encode(), purpose=REFRESH_PURPOSE,
                                 context={"user": str(int(user.id))})
    name = session_name(user_agent)
    return tokens.issue_session(user, name=name, admin=identity.is_admin, idp_refresh_token=sealed).secret


def _exchange(p: Provider, meta: dict[str, Any], code: str, verifier: str | None) -> dict[str, Any]:
    """The token endpoint's answer to the authorization code; 400 if it refuses."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": p.redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    headers = {}
    secret = oidc_client_secret(p.settings)
    if p.settings.client_auth_method == "client_secret_post":
        form.update(client_id=p.settings.client_id, client_secret=secret)
    else:  # RFC 6749 §2.3.1: both parts form-encoded before Basic
        pair = f"{quote(p.settings.client_id, safe='')}:{quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    status, answer = _http_json(p, meta["token_endpoint"], form=form, headers=headers)
    if status != 200 or not isinstance(answer, dict) or not answer.get("access_token"):
        reason = answer.get("error_description") or answer.get("error") if isinstance(answer, dict) else None
        log.info("identity provider %r refused the code (HTTP %s): %s", p.name, status, reason)
        raise errors.BadRequest("The identity provider did not accept the login; please start again")
    return answer


def _identity(p: Provider, meta: dict[str, Any], answer: dict[str, Any], nonce: str) -> tuple[Identity, str]:
    id_token = answer.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise errors.Forbidden("The identity provider sent no ID token")
    claims = verify_id_token(p, meta, id_token, nonce=nonce)
    refresh_token = answer.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise errors.Forbidden("The identity provider sent no refresh token; it must issue one "
                               "(for some providers the operator configures extra authorization parameters)")
    claims = _with_userinfo(p, meta, claims, answer.get("access_token"))
    s = p.settings
    raw_email = claims.get(s.claim_map.email)
    try:
        email = normalise_email(raw_email) if isinstance(raw_email, str) else None
    except ValueError:
        email = None
    if email is None:
        raise errors.Forbidden(f"The identity provider sent no valid e-mail address (claim '{s.claim_map.email}')")
    if claims.get(s.claim_map.email_verified) not in (True, "true"):
        raise errors.Forbidden("The identity provider does not say that your e-mail address is verified")
    is_admin = s.admin_role is not None and _has_role(claims, s.admin_role)
    if not is_admin and s.user_role is not None and not _has_role(claims, s.user_role):
        raise errors.Forbidden("Your account at the identity provider lacks the role needed to use this service")
    return Identity(str(claims["iss"]), str(claims["sub"]), email, is_admin), refresh_token


def _has_role(claims: dict[str, Any], role: OidcRole) -> bool:
    value = claims.get(role.field_name)
    return value == role.name or (isinstance(value, list) and role.name in value)


def verify_id_token(p: Provider, meta: dict[str, Any], id_token: str, *, nonce: str) -> dict[str, Any]:
    """The ID token's claims after PyJWT checked signature (the provider's JWKS), issuer, audience
    and expiry; 401 if any check fails (or the nonce is not ours), 403 without ``iss``/``sub``."""
    import jwt

    unauthorized = {"WWW-Authenticate": "Bearer"}
    try:
        header = jwt.get_unverified_header(id_token)
        algorithm = header.get("alg")
        offered = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        if algorithm not in ASYMMETRIC_ALGORITHMS or algorithm not in offered:
            raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted")
        key = _jwks_client(p, meta["jwks_uri"]).get_signing_key_from_jwt(id_token)
        claims: dict[str, Any] = jwt.decode(
            id_token, key, algorithms=[algorithm], audience=p.settings.client_id, issuer=meta["issuer"],
            leeway=CLOCK_LEEWAY, options={"require": ["exp", "iat", "aud", "iss", "sub"]},
        )
    except jwt.MissingRequiredClaimError as exc:
        if exc.claim in ("iss", "sub"):
            raise errors.Forbidden(f"The identity provider's ID token has no '{exc.claim}'") from None
        raise errors.Unauthorized(f"The ID token is invalid: {exc}", headers=unauthorized) from None
    except jwt.PyJWKClientConnectionError as exc:
        raise IdpUnreachable(str(exc)) from None
    except jwt.PyJWTError as exc:  # PyJWKClientError (unknown key id) included
        raise errors.Unauthorized(f"The ID token is invalid: {exc}", headers=unauthorized) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != p.settings.client_id:
        raise errors.Unauthorized("The ID token is invalid: it was issued to another party", headers=unauthorized)
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"].encode(), nonce.encode()):
        raise errors.Unauthorized("The ID token is invalid: it belongs to another login", headers=unauthorized)
    return claims


def _with_userinfo(p: Provider, meta: dict[str, Any], claims: dict[str, Any], access_token: Any) -> dict[str, Any]:
    """The ID token's claims, completed from the userinfo endpoint when the ID token lacks any
    claim the rules read (many providers put only ``sub`` and the protocol claims into it)."""
    s = p.settings
    wanted = {s.claim_map.email, s.claim_map.email_verified}
    wanted |= {r.field_name for r in (s.user_role, s.admin_role) if r is not None}
    endpoint = meta.get("userinfo_endpoint")
    if wanted <= claims.keys() or not isinstance(endpoint, str) or not isinstance(access_token, str):
        return claims
    status, info = _http_json(p, endpoint, headers={"Authorization": f"Bearer {access_token}"})
    if status != 200 or not isinstance(info, dict):
        raise errors.Forbidden("The identity provider gave no user information")
    if info.get("sub") != claims["sub"]:
        raise errors.Forbidden("The identity provider's user information is about someone else")
    return {**info, **claims}  # what the signed ID token says wins


def _account(p: Provider, identity: Identity) -> User:
    """The user of this (issuer, subject), created on the first login; address, admin flag and
    provider name follow the IdP at every login."""
    key = oidc_login_key(identity.issuer, identity.subject)
    for _attempt in range(3):
        try:
            user = User.get(Login.get(key, consistent_read=True).user_id, consistent_read=True)
        except DoesNotExist:
            user = User(next_id("user"), user_type="oidc", email=identity.email, login_key=key,
                        provider_name=p.name, is_admin=identity.is_admin, is_verified=True)
            try:
                with transact_write() as tx:
                    tx.save(Login(key, user_id=user.id), condition=Login.login_key.does_not_exist())
                    tx.save(user, condition=User.id.does_not_exist())
            except TransactWriteError:
                continue  # a concurrent first login of the same user won: read theirs
            return user
        actions: list[Action] = []
        if user.email != identity.email:
            actions.append(User.email.set(identity.email))
        if bool(user.is_admin) != identity.is_admin:
            actions.append(User.is_admin.set(identity.is_admin))
        if user.provider_name != p.name:
            actions.append(User.provider_name.set(p.name))
        if actions:
            user.update(actions=actions)
        return user
    raise errors.ServiceUnavailable()
