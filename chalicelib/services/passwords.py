"""Argon2id password hashes in argon2-cffi's encoded format (``$argon2id$v=19$m=65536,t=3,p=4$...``),
the format upstream stores, so existing users can be migrated as they are."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@functools.lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2-cffi defaults: argon2id, m=65536 KiB, t=3, p=4


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # verified against when no account matches, so a login takes as long either way
    return _hasher().hash("wisp-dummy-password")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)
