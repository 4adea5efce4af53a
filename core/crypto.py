"""Tiny tokens at rest: encrypted with keys derived from SECRET_KEY, never shown again.

The Fernet key is HKDF-SHA256 of SECRET_KEY. `SECRET_KEY_FALLBACKS` lists older keys: a token
encrypted under any of them (or under the first release's derivation, one SHA-256 of the key)
still decrypts, and `rotate_token` re-encrypts it under SECRET_KEY (`tinysync secrets rotate`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import SyncError

_HKDF_SALT = b"tinysync"
_HKDF_INFO = b"tinysync tiny-token encryption v2"

Keys = str | Sequence[str]


def _as_keys(keys: Keys) -> list[str]:
    return [keys] if isinstance(keys, str) else list(keys)


def _hkdf_fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _legacy_fernet(secret_key: str) -> Fernet:
    """The first release's key: one SHA-256 of SECRET_KEY (decrypting only)."""
    digest = hashlib.sha256(("tinysync-token-key:" + secret_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _multi(keys: Keys) -> MultiFernet:
    chosen = _as_keys(keys)
    return MultiFernet([_hkdf_fernet(k) for k in chosen] + [_legacy_fernet(k) for k in chosen])


def encrypt_token(token: str, keys: Keys) -> str:
    """Encrypt a Tiny token for storage under the first key (SECRET_KEY)."""
    return _hkdf_fernet(_as_keys(keys)[0]).encrypt(token.encode()).decode()


def decrypt_token(ciphertext: str, keys: Keys) -> str:
    """Decrypt a stored Tiny token with any of the keys; none fitting gives a clear error."""
    try:
        return _multi(keys).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SyncError(
            "the stored Tiny token cannot be decrypted: SECRET_KEY (and SECRET_KEY_FALLBACKS) "
            "differ from the one used when the company was added"
        ) from exc


def is_current(ciphertext: str, keys: Keys) -> bool:
    """Whether the ciphertext is already under the first key's current derivation."""
    try:
        _hkdf_fernet(_as_keys(keys)[0]).decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


def rotate_token(ciphertext: str, keys: Keys) -> str:
    """The same token re-encrypted under the first key (SyncError if no key fits)."""
    return encrypt_token(decrypt_token(ciphertext, keys), keys)


def account_key(token: str, secret_key: str) -> str:
    """A stable keyed hash naming the Tiny account, safe to use in Redis keys and logs."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()[:32]


def redact(text: str, *secrets: str | None) -> str:
    """Replace every given secret in `text` with a placeholder."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
