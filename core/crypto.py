"""Tiny tokens at rest: encrypted with a key derived from SECRET_KEY, never shown again."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

from core.errors import SyncError


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(("tinysync-token-key:" + secret_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_token(token: str, secret_key: str) -> str:
    """Encrypt a Tiny token for storage."""
    return _fernet(secret_key).encrypt(token.encode()).decode()


def decrypt_token(ciphertext: str, secret_key: str) -> str:
    """Decrypt a stored Tiny token; a wrong SECRET_KEY gives a clear error."""
    try:
        return _fernet(secret_key).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SyncError(
            "the stored Tiny token cannot be decrypted: SECRET_KEY differs from the one "
            "used when the company was added"
        ) from exc


def account_key(token: str, secret_key: str) -> str:
    """A stable keyed hash naming the Tiny account, safe to use in Redis keys and logs."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()[:32]


def redact(text: str, *secrets: str | None) -> str:
    """Replace every given secret in `text` with a placeholder."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
