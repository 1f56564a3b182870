"""Secrets at rest: trunk and agent SIP passwords (docs/design.md §7).

Stored as ``enc:v1:<Fernet token>`` with the key(s) of
``BATCHCALLS_SECRETS_KEY``: one Fernet key, or several comma-separated for
rotation (``MultiFernet``: the first encrypts, every one decrypts). A value
without the ``enc:v1:`` marker is a plaintext value written before
encryption existed (migration 0008 does not rewrite them: a migration cannot
rely on seeing the key); it is read as is and encrypted the next time it is
written. Values are decrypted only for the internal StartAttempt response.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["PREFIX", "SecretBox", "SecretsKeyMissing", "box_for", "generate_key", "secrets_key_problem"]

#: Marker of an encrypted value (``v1``: Fernet, AES-128-CBC + HMAC-SHA256).
PREFIX = "enc:v1:"


class SecretsKeyMissing(RuntimeError):
    """A password was to be stored but no BATCHCALLS_SECRETS_KEY is set."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


def _fernets(keys: str) -> list[Fernet]:
    return [Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()]


def secrets_key_problem(keys: str) -> str | None:
    """Why ``keys`` cannot encrypt secrets, or None (the `batchcalls server` check)."""
    if not keys.strip():
        return ("BATCHCALLS_SECRETS_KEY is not set (a Fernet key: python -c 'from cryptography.fernet "
                "import Fernet; print(Fernet.generate_key().decode())'; or use `batchcalls up`)")
    try:
        if not _fernets(keys):
            raise ValueError
    except (ValueError, TypeError):
        return "BATCHCALLS_SECRETS_KEY is not a comma-separated list of Fernet keys (32 url-safe base64 bytes each)"
    return None


class SecretBox:
    """Encrypts on write, decrypts (or passes legacy plaintext) on read."""

    def __init__(self, keys: str) -> None:
        fernets = _fernets(keys) if keys.strip() else []
        self._crypt = MultiFernet(fernets) if fernets else None
        self._primary = fernets[0] if fernets else None

    def seal(self, plaintext: str) -> str:
        if not plaintext:
            return ""
        if self._crypt is None:
            raise SecretsKeyMissing("BATCHCALLS_SECRETS_KEY is not set: passwords cannot be stored")
        return PREFIX + self._crypt.encrypt(plaintext.encode()).decode()

    def reseal(self, stored: str) -> str | None:
        """``stored`` as it should be written now, or None when it is fine:
        legacy plaintext is encrypted, a token of an older key (not the
        first) is re-encrypted with the first (``MultiFernet.rotate``)."""
        if not stored:
            return None
        if not stored.startswith(PREFIX):
            return self.seal(stored)
        if self._crypt is None:
            return None
        token = stored[len(PREFIX):].encode()
        try:
            self._primary.decrypt(token)
            return None
        except InvalidToken:
            pass
        try:
            return PREFIX + self._crypt.rotate(token).decode()
        except InvalidToken:
            return None  # no key reads it: left for open() to report

    def open(self, stored: str) -> str:
        if not stored or not stored.startswith(PREFIX):
            return stored or ""  # legacy plaintext (re-encrypted on its next write)
        if self._crypt is None:
            raise SecretsKeyMissing("BATCHCALLS_SECRETS_KEY is not set: stored passwords cannot be read")
        try:
            return self._crypt.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SecretsKeyMissing(
                "a stored password does not decrypt with BATCHCALLS_SECRETS_KEY "
                "(a key removed from the list too early?)") from None


@functools.lru_cache(maxsize=8)
def box_for(keys: str) -> SecretBox:
    return SecretBox(keys)
