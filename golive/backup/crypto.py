"""Optional client-side encryption: AES-256-GCM (``cryptography``) in framed chunks, so a leaked bucket leaks
nothing and any change to a stored object is detected.

Stream layout::

    header  = b"GLBKAES1" | nonce prefix (8 random bytes) | frame size (4 bytes, big endian)
    frame i = flag (1 byte: 0 more, 1 last) | length (4 bytes) | AES-GCM(key, nonce prefix | i (4 bytes),
              plaintext, aad = header | i | flag)

Every frame is authenticated together with its position and the header, so frames cannot be dropped,
reordered or swapped between objects unnoticed; the last frame is flagged, so a truncated object is refused.
The key is 32 bytes: a key file holding them raw, as 64 hex digits or as base64 (``head -c32 /dev/urandom >
backup.key``). The manifest records only the key's fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct

from golive.errors import ConfigError, TerminalError

MAGIC = b"GLBKAES1"
FRAME = 1 << 20
_HEADER = struct.Struct(">8sI")
_FRAME = struct.Struct(">BI")
TAG = 16


class DecryptionFailed(TerminalError):
    """A stored object does not decrypt: wrong key, or its bytes were changed."""


def parse_key(text: str | bytes) -> bytes:
    """32 key bytes from a key file's content (raw, hex or base64)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    if len(raw) == 32:
        return raw
    s = raw.strip()
    if re.fullmatch(rb"[0-9a-fA-F]{64}", s):
        return bytes.fromhex(s.decode())
    try:
        key = base64.b64decode(s, validate=True)
    except ValueError:
        key = b""
    if len(key) == 32:
        return key
    raise ConfigError("the encryption key must be 32 bytes: raw, 64 hex digits or base64 "
                      "(make one with: head -c32 /dev/urandom > backup.key)")


def read_key_file(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return parse_key(fh.read())
    except OSError as exc:
        raise ConfigError(f"encryption key file {path}: {exc.strerror}") from None


def key_id(key: bytes) -> str:
    """A fingerprint that names the key without revealing it."""
    return hashlib.sha256(b"golive-backup-key\x00" + key).hexdigest()[:16]


class Encryptor:
    """Feed plaintext, get ciphertext frames back (memory: one frame)."""

    def __init__(self, key: bytes, frame: int = FRAME):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.aead = AESGCM(key)
        self.frame = frame
        self.prefix = os.urandom(8)
        self.header = MAGIC + _HEADER.pack(self.prefix, frame)
        self.index = 0
        self.buf = bytearray()
        self.started = False

    def _seal(self, data: bytes, last: bool) -> bytes:
        flag = 1 if last else 0
        idx = struct.pack(">I", self.index)
        ct = self.aead.encrypt(self.prefix + idx, data, self.header + idx + bytes([flag]))
        self.index += 1
        return _FRAME.pack(flag, len(ct)) + ct

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        if not self.started:
            out += self.header
            self.started = True
        self.buf += data
        while len(self.buf) > self.frame:  # keep at least one byte back: the last frame carries the flag
            out += self._seal(bytes(self.buf[:self.frame]), False)
            del self.buf[:self.frame]
        return bytes(out)

    def finish(self) -> bytes:
        out = b"" if self.started else self.header
        self.started = True
        out += self._seal(bytes(self.buf), True)
        self.buf = bytearray()
        return out


class Decryptor:
    """Feed ciphertext as it arrives, get plaintext back; ``finish`` refuses a truncated stream."""

    def __init__(self, key: bytes, name: str):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.aead = AESGCM(key)
        self.name = name
        self.buf = bytearray()
        self.header = None
        self.prefix = b""
        self.index = 0
        self.done = False

    def _fail(self, why: str) -> DecryptionFailed:
        return DecryptionFailed(f"{self.name}: {why}", object=self.name)

    def feed(self, data: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        self.buf += data
        out = bytearray()
        if self.header is None:
            if len(self.buf) < len(MAGIC) + _HEADER.size:
                return b""
            if bytes(self.buf[:len(MAGIC)]) != MAGIC:
                raise self._fail("not an encrypted golive object (wrong header)")
            self.header = bytes(self.buf[:len(MAGIC) + _HEADER.size])
            self.prefix, _ = _HEADER.unpack(self.header[len(MAGIC):])
            del self.buf[:len(self.header)]
        while len(self.buf) >= _FRAME.size:
            flag, n = _FRAME.unpack(self.buf[:_FRAME.size])
            if self.done:
                raise self._fail("data after the last frame")
            if len(self.buf) < _FRAME.size + n:
                break
            ct = bytes(self.buf[_FRAME.size:_FRAME.size + n])
            del self.buf[:_FRAME.size + n]
            idx = struct.pack(">I", self.index)
            try:
                out += self.aead.decrypt(self.prefix + idx, ct, self.header + idx + bytes([flag]))
            except InvalidTag:
                raise self._fail(f"frame {self.index} does not authenticate (changed bytes, or the wrong key)") from None
            self.index += 1
            if flag == 1:
                self.done = True
        return bytes(out)

    def finish(self) -> None:
        if not self.done or self.buf:
            raise self._fail("the encrypted stream is truncated (its last frame is missing)")
