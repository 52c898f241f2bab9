"""Provisioned users are created/updated from config at every start (spec §9)."""
from __future__ import annotations

import pytest

from chalicelib.services import accounts, passwords
from chalicelib.settings import ConfigError, ProvisionedUser
from chalicelib.store.users import User
from tests.factories import make_user
from tests.support import settings_with


def _provisioning(use_settings, entries):
    use_settings(settings_with("security.local_account", user_provisioning=entries))


def test_provisioned_admin_from_test_config_is_created_verified_and_admin():
    (user_id,) = accounts.provision_users()
    user = User.get(user_id)
    assert user.email == "provisioned-admin@example.org" and user.is_admin and user.is_verified
    assert user.provision_number == 1 and passwords.verify(user.password_hash, "Provisioned-Admin-1!")
    assert accounts.provision_users() == [user_id]  # idempotent: same user at every start


def test_changes_in_config_are_applied_at_next_start(use_settings):
    _provisioning(use_settings, {4: ProvisionedUser(email="ops@example.org", password="First-Password-1", is_admin=True)})
    (user_id,) = accounts.provision_users()
    _provisioning(use_settings, {4: ProvisionedUser(email="ops2@example.org", password="Second-Password-2", is_admin=False)})
    assert accounts.provision_users() == [user_id]
    user = User.get(user_id)
    assert user.email == "ops2@example.org" and not user.is_admin
    assert passwords.verify(user.password_hash, "Second-Password-2")
    assert accounts.find_local("ops@example.org") is None and accounts.find_local("ops2@example.org").id == user_id


def test_conflicting_address_is_a_config_error_naming_the_key(use_settings):
    make_user("someone@example.org")
    _provisioning(use_settings, {2: ProvisionedUser(email="someone@example.org", password="First-Password-1")})
    with pytest.raises(ConfigError, match=r"security\.local_account\.user_provisioning\.2\.email"):
        accounts.provision_users()


def test_the_local_bucket_lets_the_web_app_upload_parts_and_read_their_etag():
    """Direct uploads from the web app (issue 14) PUT parts from client_url's origin and read the
    ETag, as the deploy template's CORS rule allows; the local bucket gets the same rule."""
    from chalicelib import aws, bootstrap
    from chalicelib.settings import environment, get_settings

    bootstrap.ensure_bucket(get_settings().client_url)
    (rule,) = aws.client("s3").get_bucket_cors(Bucket=environment().bucket)["CORSRules"]
    assert rule["AllowedOrigins"] == ["http://wisp.test"] and "PUT" in rule["AllowedMethods"]
    assert rule["ExposeHeaders"] == ["ETag"]
