"""The one secret: it encrypts the settings store (Fernet) and signs message links (HMAC).

The operator's `FOLD_SECRET_KEY` is used when set; otherwise a random key is made once in
`FOLD_DATA_DIR/secret.key` (readable by its owner alone), so the embedded default works
with nothing to set. Purpose-specific keys are derived from it, so a link signature can
never be replayed as a ciphertext key or the other way round."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from fold.config import Settings

__all__ = ["InvalidToken", "open_sealed", "seal", "sign", "verify"]


def _master(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    return _key_file(str(Path(settings.data_dir).resolve() / "secret.key"))


@lru_cache(maxsize=8)
def _key_file(name: str) -> bytes:
    path = Path(name)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip().encode()


@lru_cache(maxsize=32)
def _derive(master: bytes, purpose: str) -> bytes:
    return hmac.new(master, f"fold:{purpose}".encode(), hashlib.sha256).digest()


@lru_cache(maxsize=8)
def _fernet(master: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(master, "settings")))


def seal(settings: Settings, plain: bytes) -> str:
    """Encrypt (and authenticate) `plain` for the settings store."""
    return _fernet(_master(settings)).encrypt(plain).decode()


def open_sealed(settings: Settings, sealed: str) -> bytes:
    """Decrypt what `seal` made; InvalidToken when the key changed or the text was altered."""
    return _fernet(_master(settings)).decrypt(sealed.encode())


def sign(settings: Settings, purpose: str, payload: str) -> str:
    """A URL-safe signature of `payload` for one purpose (unsubscribe, acknowledge)."""
    digest = hmac.new(_derive(_master(settings), purpose), payload.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:20]).decode().rstrip("=")


def verify(settings: Settings, purpose: str, payload: str, signature: str) -> bool:
    # As bytes: a signature from a link may hold any character, and compare_digest refuses
    # non-ASCII text.
    given = signature.encode("utf-8", "replace")
    return hmac.compare_digest(sign(settings, purpose, payload).encode(), given)
