"""An LDAP directory behind ldap3 (pure Python): find one person with a service account, then
check their password by binding as them.

Nothing above this module sees an ldap3 type: searches return ``Entry`` values, and every failure
to talk to the server (unreachable, TLS, a refused service account, a server error) becomes
``DirectoryUnavailable``. Each call opens its own short connection: a Lambda may sleep for
minutes between requests, and a connection kept across that would be half-closed.

The user name is escaped before it enters a filter (spec §12.8: upstream does not): RFC 4515's
special characters (``*``, ``(``, ``)``, ``\\``, NUL) and everything outside printable ASCII are
written as ``\\hh`` bytes of their UTF-8 encoding, so no input can widen a search, and the filter
text that goes to the server is plain ASCII.
"""
from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .settings import LdapProviderSettings, LdapQuery

log = logging.getLogger("wisp.ldap")

CONNECT_TIMEOUT_S = 5  # per server address; an unreachable directory must not eat the API's 29 s
RECEIVE_TIMEOUT_S = 10
SEARCH_TIME_LIMIT_S = 10

# result codes (RFC 4511) that a search may end with and still mean "this is what we found"
SUCCESS, SIZE_LIMIT_EXCEEDED, NO_SUCH_OBJECT, INVALID_CREDENTIALS = 0, 4, 32, 49


class DirectoryUnavailable(Exception):
    """The directory could not be asked: unreachable, TLS failed, service account refused, ..."""


@dataclass(frozen=True)
class Entry:
    dn: str
    attributes: dict[str, list[str]]  # attribute name as requested → its values (strings)

    def first(self, attribute: str) -> str | None:
        """The attribute's first non-empty value, None if it has none."""
        for value in self.attributes.get(attribute, []):
            if value:
                return value
        return None


def escape_filter_value(text: str) -> str:
    """``text`` as an RFC 4515 assertion value that matches exactly ``text``, in printable ASCII.

    ldap3's ``escape_filter_chars`` covers the five special characters; what is not printable
    ASCII (non-ASCII letters, control characters) is written byte by byte as well. Raises
    UnicodeEncodeError for a string that is not valid Unicode (a lone surrogate)."""
    from ldap3.utils.conv import escape_filter_chars

    out = []
    for char in escape_filter_chars(text, "utf-8"):
        if " " <= char <= "~":
            out.append(char)
        else:
            out.extend(f"\\{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


def person_filter(query: LdapQuery, attributes: list[str], username: str) -> str:
    """``(&<query filter>(|(a1=<username>)(a2=<username>)...))`` with the user name escaped."""
    value = escape_filter_value(username)
    alternatives = "".join(f"({attribute}={value})" for attribute in attributes)
    return f"(&{query.filter}(|{alternatives}))"


# ------------------------------------------------------------------------------------------
# Connections
# ------------------------------------------------------------------------------------------


def _server(provider: LdapProviderSettings) -> Any:
    import ldap3

    url = urlsplit(provider.server_address)
    host = url.hostname or ""
    try:
        ipaddress.ip_address(host)
        sni = None  # no SNI for an address
    except ValueError:
        sni = host or None
    # always verify the server's certificate (ldap3's default is not to), against the configured
    # CA bundle or else the system's; ldap3 checks the host name itself
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=provider.ca_pem_file_path, sni=sni)
    return ldap3.Server(provider.server_address, tls=tls, get_info=ldap3.NONE, connect_timeout=CONNECT_TIMEOUT_S)


@contextmanager
def _connection(provider: LdapProviderSettings, **credentials: Any) -> Iterator[Any]:
    """An open connection (TLS started if configured), not bound yet; unbound on the way out."""
    import ldap3
    from ldap3.core.exceptions import LDAPException

    connection = ldap3.Connection(_server(provider), raise_exceptions=False, read_only=True, auto_referrals=False,
                                  receive_timeout=RECEIVE_TIMEOUT_S, **credentials)
    try:
        connection.open()
        if provider.start_tls:
            connection.start_tls()
        yield connection
    except LDAPException as exc:
        raise DirectoryUnavailable(f"{provider.server_address}: {type(exc).__name__}: {exc}") from None
    finally:
        try:
            connection.unbind()
        except Exception:  # noqa: BLE001 - closing a broken connection must not hide the real error
            pass


def _service_credentials(provider: LdapProviderSettings, password: str) -> dict[str, Any]:
    import ldap3

    account = provider.service_account_auth
    if account.mechanism == "DIGEST-MD5":
        return {"authentication": ldap3.SASL, "sasl_mechanism": ldap3.DIGEST_MD5,
                "sasl_credentials": (None, account.user, password, None)}
    if account.mechanism == "NTLM":
        if not _is_lm_nt_hash(password) and not _md4_available():
            raise DirectoryUnavailable("NTLM needs MD4, which this Python's OpenSSL lacks: give the service "
                                       "account's password as its LM:NT hash pair (32:32 hex digits)")
        return {"authentication": ldap3.NTLM, "user": account.user, "password": password}
    return {"authentication": ldap3.SIMPLE, "user": account.user, "password": password}


def _is_lm_nt_hash(password: str) -> bool:
    """ldap3 takes "<LM hash>:<NT hash>" (hex) in place of an NTLM password, and then needs no MD4."""
    parts = password.split(":")
    return len(parts) == 2 and all(len(p) == 32 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts)


def _md4_available() -> bool:
    import hashlib

    try:
        hashlib.new("md4")
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# Operations
# ------------------------------------------------------------------------------------------


def find(provider: LdapProviderSettings, *, service_password: str, query: LdapQuery, username: str,
         attributes: list[str]) -> list[Entry]:
    """The entries (at most two: enough to see a name is ambiguous) under the query's base that
    match its filter and whose ``username_attributes`` include ``username``."""
    search_filter = person_filter(query, provider.username_attributes, username)
    with _connection(provider, **_service_credentials(provider, service_password)) as connection:
        if not connection.bind():
            raise DirectoryUnavailable(f"{provider.server_address}: the service account "
                                       f"{provider.service_account_auth.user!r} was refused: {_describe(connection)}")
        connection.search(query.base_dn, search_filter, search_scope="SUBTREE", attributes=attributes,
                          size_limit=2, time_limit=SEARCH_TIME_LIMIT_S)
        code = connection.result.get("result")
        if code == NO_SUCH_OBJECT:
            log.warning("LDAP %s: the base DN %r does not exist", provider.server_address, query.base_dn)
            return []
        if code not in (SUCCESS, SIZE_LIMIT_EXCEEDED):
            raise DirectoryUnavailable(f"{provider.server_address}: search failed: {_describe(connection)}")
        found = [_entry(item, attributes) for item in connection.response or [] if item.get("type") == "searchResEntry"]
        if code == SIZE_LIMIT_EXCEEDED and len(found) < 2:
            found.append(Entry(dn="", attributes={}))  # the server stopped at its own limit: more than one
        return found


def password_is_right(provider: LdapProviderSettings, *, dn: str, password: str) -> bool:
    """Whether a simple bind as ``dn`` with ``password`` succeeds. An empty password is always
    wrong: LDAP reads an empty simple bind as an anonymous one, which succeeds."""
    import ldap3

    if not password:
        return False
    with _connection(provider, authentication=ldap3.SIMPLE, user=dn, password=password) as connection:
        if connection.bind():
            return True
        if connection.result.get("result") == INVALID_CREDENTIALS:
            return False
        raise DirectoryUnavailable(f"{provider.server_address}: bind failed: {_describe(connection)}")


def _entry(item: dict[str, Any], attributes: list[str]) -> Entry:
    raw = item.get("attributes") or {}
    lowered = {str(k).lower(): v for k, v in raw.items()}
    values: dict[str, list[str]] = {}
    for name in attributes:
        found = lowered.get(name.lower(), [])
        found = found if isinstance(found, list) else [found]
        values[name] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in found]
    return Entry(dn=str(item.get("dn", "")), attributes=values)


def _describe(connection: Any) -> str:
    result = connection.result or {}
    return f"{result.get('description')} ({result.get('result')}) {result.get('message') or ''}".strip()
