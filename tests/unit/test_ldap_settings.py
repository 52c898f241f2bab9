"""security.ldap_providers: validated at start with the key named; the service account's password
inline, from a Secrets Manager ARN, or through !ENV with NAME_SECRET_ARN; the filter escaping and
the login key (spec §3.4, §9, §12.8)."""
from __future__ import annotations

import json

import boto3
import pytest

from chalicelib import ldap_directory, settings
from chalicelib.settings import ConfigError, LdapQuery, ldap_service_password, parse_settings
from chalicelib.store.users import ldap_login_key

PROVIDER = """
client_url: http://wisp.test/#
security:
  secret_key: "{key}"
  local_account:
    mode: {mode}
  ldap_providers:
    Campus:
      server_address: {url}
      service_account_auth:
        user: cn=reader,dc=example,dc=org
        {password}
      username_attributes: {attributes}
      uid_attribute: uid
      mail_attribute: mail
      {queries}
"""
QUERIES = ('user_query: {base_dn: "ou=people,dc=example,dc=org", filter: "(objectClass=inetOrgPerson)"}\n'
           '      admin_query: {base_dn: "ou=people,dc=example,dc=org", filter: "memberOf=cn=admins,dc=example,dc=org"}')


def config(*, mode: str = "enabled", url: str = "ldaps://ldap.example.org", password: str = "password: s3cret",
           attributes: str = "[uid, mail]", queries: str = QUERIES, extra: str = "") -> str:
    text = PROVIDER.format(key="ab" * 32, mode=mode, url=url, password=password, attributes=attributes,
                           queries=queries)
    return text + (f"      {extra}\n" if extra else "")


def test_a_complete_provider_parses():
    parsed = parse_settings(config(mode="disabled"))  # LDAP alone is a login method
    provider = parsed.security.ldap_providers["Campus"]
    assert provider.user_query is not None and provider.admin_query is not None
    assert provider.admin_query.filter == "(memberOf=cn=admins,dc=example,dc=org)"  # parenthesised
    assert provider.service_account_auth.mechanism == "SIMPLE"
    assert (provider.hidden, provider.icon_url, provider.allow_creation_of_api_tokens) == (False, None, True)
    assert ldap_service_password(provider) == "s3cret"


@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"url": "https://ldap.example.org"}, "security.ldap_providers.Campus.server_address", "ldap://"),
    ({"attributes": "[]"}, "security.ldap_providers.Campus.username_attributes", "at least 1"),
    ({"attributes": "['uid)(x']"}, "security.ldap_providers.Campus.username_attributes", "attribute name"),
    ({"queries": ""}, "security.ldap_providers.Campus", "user_query and admin_query"),
    ({"queries": 'user_query: {base_dn: "dc=x", filter: "(&(a=b)"}'},
     "security.ldap_providers.Campus.user_query.filter", "RFC 4515"),
    ({"password": "password: a\n        password_secret_arn: arn:aws:secretsmanager:eu-central-1:1:secret:x"},
     "security.ldap_providers.Campus.service_account_auth", "exactly one"),
    ({"password": ""}, "security.ldap_providers.Campus.service_account_auth", "exactly one"),
    ({"extra": "start_tls: true"}, "security.ldap_providers.Campus", "start_tls"),
    ({"extra": "ca_pem_file_path: /nonexistent/ca.pem"}, "security.ldap_providers.Campus.ca_pem_file_path",
     "not a readable file"),
    ({"extra": "base_dn: dc=x"}, "security.ldap_providers.Campus.base_dn", "Extra inputs"),
])
def test_bad_providers_fail_with_the_key_named(changes, key, words):
    with pytest.raises(ConfigError) as failure:
        parse_settings(config(**changes), "wisp.yml")
    message = str(failure.value)
    assert message.startswith("wisp.yml: ") and key in message and words in message, message


def test_at_least_one_login_method():
    text = "client_url: http://wisp.test/#\nsecurity:\n  secret_key: '" + "ab" * 32 + "'\n  local_account:\n    mode: disabled\n"
    with pytest.raises(ConfigError, match="security: .*no login method"):
        parse_settings(text)


def test_starttls_and_mechanisms_parse():
    parsed = parse_settings(config(url="ldap://ldap.example.org:389", extra="start_tls: true"))
    assert parsed.security.ldap_providers["Campus"].start_tls
    parsed = parse_settings(config(password="mechanism: DIGEST-MD5\n        password: x"))
    assert parsed.security.ldap_providers["Campus"].service_account_auth.mechanism == "DIGEST-MD5"
    with pytest.raises(ConfigError, match="mechanism"):
        parse_settings(config(password="mechanism: KERBEROS\n        password: x"))


def test_password_from_secrets_manager_is_read_once():
    settings._plain_secret_from_secrets_manager.cache_clear()
    client = boto3.client("secretsmanager", region_name="eu-central-1")
    arn = client.create_secret(Name="wisp-test/ldap", SecretString="from-the-secret")["ARN"]
    provider = parse_settings(config(password=f"password_secret_arn: {arn}")).security.ldap_providers["Campus"]
    assert provider.service_account_auth.password is None
    assert ldap_service_password(provider) == "from-the-secret"
    client.put_secret_value(SecretId=arn, SecretString="rotated")
    assert ldap_service_password(provider) == "from-the-secret"  # cached for the container's life
    json_arn = client.create_secret(Name="wisp-test/ldap-json",
                                    SecretString=json.dumps({"password": "in-json", "user": "x"}))["ARN"]
    provider = parse_settings(config(password=f"password_secret_arn: {json_arn}")).security.ldap_providers["Campus"]
    assert ldap_service_password(provider) == "in-json"
    settings._plain_secret_from_secrets_manager.cache_clear()


def test_password_through_env_and_its_secret_arn(monkeypatch):
    """The deployed stack's other way: ``!ENV ${NAME}`` with only NAME_SECRET_ARN in the environment."""
    settings._plain_secret_from_secrets_manager.cache_clear()
    arn = boto3.client("secretsmanager", region_name="eu-central-1").create_secret(
        Name="wisp-test/ldap-env", SecretString="via-env-ref")["ARN"]
    monkeypatch.delenv("WISP_LDAP_PASSWORD", raising=False)
    monkeypatch.setenv("WISP_LDAP_PASSWORD_SECRET_ARN", arn)
    provider = parse_settings(config(password="password: !ENV ${WISP_LDAP_PASSWORD}")).security.ldap_providers["Campus"]
    assert ldap_service_password(provider) == "via-env-ref"
    settings._plain_secret_from_secrets_manager.cache_clear()


def test_filter_values_are_escaped_to_printable_ascii():
    escape = ldap_directory.escape_filter_value
    assert escape("alice") == "alice"
    assert escape("*)(uid=*") == "\\2a\\29\\28uid=\\2a"
    assert escape("a\\b") == "a\\5cb"
    assert escape("a\x00b") == "a\\00b"
    assert escape("jürgen") == "j\\c3\\bcrgen"
    assert escape("tab\there\x7f") == "tab\\09here\\7f"
    assert escape("日") == "\\e6\\97\\a5"
    with pytest.raises(UnicodeEncodeError):
        escape("\ud800")


def test_person_filter_ands_the_query_with_the_alternatives():
    query = LdapQuery(base_dn="dc=x", filter="(objectClass=person)")
    assert ldap_directory.person_filter(query, ["uid", "mail"], "a*") == \
        "(&(objectClass=person)(|(uid=a\\2a)(mail=a\\2a)))"


def test_login_keys_do_not_collide():
    assert ldap_login_key("Campus", "alice") == "ldap#Campus#alice"
    assert ldap_login_key("a#b", "c") != ldap_login_key("a", "b#c")
    assert ldap_login_key("a%23b", "c") != ldap_login_key("a#b", "c")


def test_missing_slapd_skips_but_fails_under_ci(monkeypatch):
    from tests import slapd

    monkeypatch.setattr(slapd, "slapd_binary", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI installs them"):
        slapd.require_slapd()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="did NOT run"):
        slapd.require_slapd()


def test_ntlm_without_md4_asks_for_the_hash_pair(monkeypatch):
    provider = parse_settings(config(password="mechanism: NTLM\n        password: plain")).security.ldap_providers["Campus"]
    monkeypatch.setattr(ldap_directory, "_md4_available", lambda: False)
    with pytest.raises(ldap_directory.DirectoryUnavailable, match="LM:NT hash"):
        ldap_directory._service_credentials(provider, "plain")
    pair = "aad3b435b51404eeaad3b435b51404ee:" + "0" * 32
    assert ldap_directory._service_credentials(provider, pair)["password"] == pair
