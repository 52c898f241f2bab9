"""chalicelib/sealing.py: AES-GCM locally, KMS when a key is named; both refuse altered values and
values sealed for another context."""
from __future__ import annotations

import boto3
import pytest

from chalicelib import sealing


def test_local_round_trip_and_refusals():
    sealed = sealing.seal_local(b"secret", purpose="p", context={"user": "1"})
    assert sealed.startswith("gcm:") and "secret" not in sealed
    assert sealing.open_local(sealed, purpose="p", context={"user": "1"}) == b"secret"
    with pytest.raises(sealing.Unreadable):
        sealing.open_local(sealed, purpose="p", context={"user": "2"})
    with pytest.raises(sealing.Unreadable):
        sealing.open_local(sealed, purpose="other", context={"user": "1"})
    altered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(sealing.Unreadable):
        sealing.open_local(altered, purpose="p", context={"user": "1"})
    for junk in ("", "gcm:", "gcm:!!", "kms:abc", "plain"):
        with pytest.raises(sealing.Unreadable):
            sealing.open_local(junk, purpose="p", context={"user": "1"})


def test_stored_values_use_kms_when_a_key_is_named(monkeypatch):
    key_id = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("WISP_TOKEN_KMS_KEY_ID", key_id)
    sealed = sealing.seal_stored(b"refresh", purpose="p", context={"user": "7"})
    assert sealed.startswith("kms:")
    assert sealing.open_stored(sealed, purpose="p", context={"user": "7"}) == b"refresh"
    with pytest.raises(sealing.Unreadable):
        sealing.open_stored(sealed, purpose="p", context={"user": "8"})
    # what was sealed before the key was configured stays readable
    monkeypatch.delenv("WISP_TOKEN_KMS_KEY_ID")
    local = sealing.seal_stored(b"older", purpose="p", context={"user": "7"})
    assert local.startswith("gcm:")
    monkeypatch.setenv("WISP_TOKEN_KMS_KEY_ID", key_id)
    assert sealing.open_stored(local, purpose="p", context={"user": "7"}) == b"older"
