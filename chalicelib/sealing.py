"""Encryption of small secrets Wisp must keep or hand out: AES-GCM, or KMS when a key is named.

Two uses, two keys:

* ``seal_stored``/``open_stored``: a secret kept in DynamoDB (an IdP's refresh token). With
  ``WISP_TOKEN_KMS_KEY_ID`` set (deployed stacks), KMS encrypts it, with an encryption context that
  binds it to its purpose and owner, so a copied ciphertext is useless elsewhere and every
  decryption is in CloudTrail. Without it (the local stack, tests), AES-256-GCM with a key derived
  from ``security.secret_key``.
* ``seal_local``/``open_local``: short-lived state handed to the browser (the OIDC login cookie),
  always with the local key: a KMS call per redirect would add latency and cost and buys nothing,
  as the state dies within minutes.

The output says which scheme made it (``kms:`` / ``gcm:`` prefix), so the deployed key can be
introduced later without losing what was sealed before.
"""
from __future__ import annotations

import base64
import os

from . import aws
from .settings import environment, get_settings


class Unreadable(Exception):
    """The sealed value was altered, is from another context, or its key is gone."""


def _local_key(purpose: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    # one derived key per purpose: the secret key also signs e-mail links
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"wisp {purpose}".encode()).derive(get_settings().secret_key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise Unreadable("not base64") from None


def _aad(context: dict[str, str]) -> bytes:
    return "&".join(f"{k}={v}" for k, v in sorted(context.items())).encode()


def seal_local(plaintext: bytes, *, purpose: str, context: dict[str, str]) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return "gcm:" + _b64(nonce + AESGCM(_local_key(purpose)).encrypt(nonce, plaintext, _aad(context)))


def open_local(sealed: str, *, purpose: str, context: dict[str, str]) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    scheme, _, payload = sealed.partition(":")
    if scheme != "gcm":
        raise Unreadable("unknown scheme")
    raw = _unb64(payload)
    if len(raw) < 12 + 16:
        raise Unreadable("too short")
    try:
        return AESGCM(_local_key(purpose)).decrypt(raw[:12], raw[12:], _aad(context))
    except InvalidTag:
        raise Unreadable("altered, or sealed for another context") from None


def seal_stored(plaintext: bytes, *, purpose: str, context: dict[str, str]) -> str:
    """Encrypt a secret for storage: KMS when ``WISP_TOKEN_KMS_KEY_ID`` is set, else AES-GCM."""
    key_id = environment().token_kms_key_id
    if key_id is None:
        return seal_local(plaintext, purpose=purpose, context=context)
    blob = aws.client("kms").encrypt(KeyId=key_id, Plaintext=plaintext,
                                     EncryptionContext={"purpose": purpose, **context})["CiphertextBlob"]
    return "kms:" + _b64(blob)


def open_stored(sealed: str, *, purpose: str, context: dict[str, str]) -> bytes:
    scheme, _, payload = sealed.partition(":")
    if scheme != "kms":
        return open_local(sealed, purpose=purpose, context=context)
    from botocore.exceptions import ClientError

    try:
        answer = aws.client("kms").decrypt(CiphertextBlob=_unb64(payload),
                                           EncryptionContext={"purpose": purpose, **context})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("InvalidCiphertextException", "IncorrectKeyException"):
            raise Unreadable("altered, or sealed for another context") from None
        raise
    return bytes(answer["Plaintext"])
