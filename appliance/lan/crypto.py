"""The store's credentials and the sealed frames registers exchange.

Pairing is by a store secret: every register of the store holds it (typed in, or a
key file the back office issued). From it and the store id each register derives the
store key with scrypt, so a weak passphrase still costs an attacker dearly per guess
and the same secret in two stores gives two unrelated keys. A key is named on the
wire only by its id (an HMAC of a constant), never sent.

Each connection derives fresh keys from the store key and two random nonces, one per
side (HKDF), one key per direction. Frames are ChaCha20-Poly1305 with the frame
counter as nonce: a frame must carry exactly the next counter, so a frame recorded
and sent again — on this connection or any other, whose keys differ — fails.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from appliance.config import Config
from appliance.errors import ConfigError

KEY_ID_LEN = 8
NONCE_LEN = 16
COUNTER_LEN = 8


class ChannelError(Exception):
    """A peer message failed authentication, replay or protocol checks."""

    reason = "protocol"


class AuthFailed(ChannelError):
    reason = "auth"


class Replayed(ChannelError):
    reason = "replay"


@dataclass(frozen=True)
class StoreKey:
    key: bytes
    key_id: bytes


@functools.lru_cache(maxsize=16)
def derive_key(secret: str, store_id: str) -> StoreKey:
    salt = b"register-appliance/lan/v1/" + store_id.encode()
    key = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(secret.encode())
    return StoreKey(key, hmac.new(key, b"key id", hashlib.sha256).digest()[:KEY_ID_LEN])


class Keyring:
    """The store key in use and older ones still accepted (first is current)."""

    def __init__(self, store_id: str, secrets_: Iterable[str]) -> None:
        self.keys = [derive_key(s, store_id) for s in secrets_]
        if not self.keys:
            raise ConfigError("lan: no store secret given")
        self.current = self.keys[0]
        self._by_id = {k.key_id: k for k in self.keys}

    def get(self, key_id: bytes) -> StoreKey | None:
        return self._by_id.get(key_id)


def new_secret() -> str:
    """A store secret with 256 bits of randomness, safe to paste into a config."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def load_keyring(config: Config) -> Keyring:
    lan = config.lan
    found = [lan.secret] if lan.secret else []
    if lan.secret_file:
        path = Path(lan.secret_file)
        if not path.is_absolute() and config.source not in ("<defaults>", "<dict>"):
            path = Path(config.source).parent / path
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"lan.secret_file: cannot read {path}: {exc.strerror}") from None
        keys = [x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#")]
        short = [i + 1 for i, k in enumerate(keys) if len(k) < 16]
        if not keys or short:
            raise ConfigError(
                f"lan.secret_file: {path} must hold secrets of at least 16 characters, "
                "one a line" + (f" (line {short[0]} is shorter)" if short else "")
            )
        found += keys
    return Keyring(config.store.id, found)


def session_keys(key: StoreKey, client_nonce: bytes, server_nonce: bytes) -> tuple[bytes, bytes]:
    """(client→server key, server→client key) for one connection."""
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=64,
        salt=client_nonce + server_nonce,
        info=b"register-appliance lan session v1",
    ).derive(key.key)
    return okm[:32], okm[32:]


def new_nonce() -> bytes:
    return os.urandom(NONCE_LEN)


class Sealer:
    """Seals one direction's frames: counter (8 bytes) + ciphertext and tag."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self.counter = 0

    def seal(self, plaintext: bytes) -> bytes:
        head = self.counter.to_bytes(COUNTER_LEN, "big")
        self.counter += 1
        return head + self._aead.encrypt(b"\0\0\0\0" + head, plaintext, head)


class Opener:
    """Opens the other direction's frames, each exactly once and in order."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self.counter = 0

    def open(self, frame: bytes) -> bytes:
        if len(frame) < COUNTER_LEN + 16:
            raise ChannelError("frame too short")
        head = frame[:COUNTER_LEN]
        counter = int.from_bytes(head, "big")
        if counter != self.counter:
            raise Replayed(f"frame {counter} where {self.counter} was due")
        try:
            plaintext = self._aead.decrypt(b"\0\0\0\0" + head, frame[COUNTER_LEN:], head)
        except InvalidTag:
            raise AuthFailed("frame failed authentication") from None
        self.counter += 1
        return plaintext
