"""Secrets at rest: Fernet (AES-128-CBC + HMAC) with key rotation through MultiFernet."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from connector.base.settings import Settings

log = logging.getLogger(__name__)


class SecretsError(Exception):
    pass


KDF_SALT = b"storefront-connector/secrets/v1"  # fixed: the same passphrase must give the same key on every host


def _fernets(key: str) -> list[Fernet]:
    """A generated key (`Fernet.generate_key()`, what `connector keygen` prints) as it is. A passphrase is
    stretched with scrypt, memory-hard, so a stolen database cannot be tried against guesses cheaply; the
    single SHA-256 of earlier versions still decrypts (never encrypts), so secrets sealed with it open and
    are sealed anew on their next write."""
    try:
        return [Fernet(key.encode())]
    except ValueError:
        return [Fernet(_stretched(key)), Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))]


@functools.lru_cache(maxsize=8)
def _stretched(passphrase: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.scrypt(passphrase.encode(), salt=KDF_SALT, n=2**14, r=8, p=1, dklen=32))


class SecretBox:
    """Encrypts and decrypts the secrets dict of a store or ERP connection.

    CONNECTOR_ENCRYPTION_KEY may list several keys separated by commas: the first encrypts, all
    decrypt, so a key can be rotated without downtime.
    """

    def __init__(self, keys: list[str]):
        if not keys:
            raise SecretsError("no encryption key")
        self._box = MultiFernet([f for k in keys if k.strip() for f in _fernets(k.strip())])

    def seal(self, secrets: dict[str, str]) -> str:
        return self._box.encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()

    def open(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            return json.loads(self._box.decrypt(token.encode()))
        except InvalidToken:
            raise SecretsError(
                "stored secrets cannot be decrypted: CONNECTOR_ENCRYPTION_KEY is not the key they "
                "were sealed with (list the old key after the new one, comma-separated, to rotate)"
            ) from None

    def rotate(self, token: str) -> str:
        return self._box.rotate(token.encode()).decode()


def secret_box(settings: Settings) -> SecretBox:
    if settings.encryption_key:
        return SecretBox(settings.encryption_key.split(","))
    if not settings.database_url.startswith("sqlite"):
        raise SecretsError("CONNECTOR_ENCRYPTION_KEY must be set when DATABASE_URL is not SQLite")
    # Embedded defaults only: keep a generated key beside the SQLite file.
    path = settings.instance_path / "encryption.key"
    if not path.exists():
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
        log.warning("generated an encryption key at %s; set CONNECTOR_ENCRYPTION_KEY in production", path)
    return SecretBox([path.read_text().strip()])


def mask(value: str | None) -> str:
    """What a page or a dump may show of a secret: never more than its last four characters."""
    if not value:
        return ""
    return "••••" + value[-4:] if len(value) >= 12 else "••••"


def unreadable_secrets(box: SecretBox, sealed: list[tuple[str, str | None]]) -> str | None:
    """Why the stored secrets cannot be opened with this key, naming what (None when they all open): a
    wrong CONNECTOR_ENCRYPTION_KEY must stop a process at start, not fail every webhook later."""
    refused = []
    for name, token in sealed:
        try:
            box.open(token)
        except SecretsError:
            refused.append(name)
    if not refused:
        return None
    shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
    return (
        f"CONNECTOR_ENCRYPTION_KEY does not open the stored secrets of {shown}: set the key they were sealed "
        "with (to rotate, list the new key first and the old one after it, comma-separated)"
    )
