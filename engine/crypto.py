"""Encryption at rest for channel secrets (Fernet, keys from THROUGHLINE_ENCRYPTION_KEY)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    """Encrypts and decrypts short secrets; the first key encrypts, every key decrypts.

    `keys` is a comma-separated list so a key can be rotated: put the new key first and
    keep the old one after it until every secret has been re-encrypted.
    """

    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet(
            [Fernet(key.strip().encode()) for key in keys.split(",")]
        )

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a stored secret cannot be decrypted with THROUGHLINE_ENCRYPTION_KEY"
            ) from None
