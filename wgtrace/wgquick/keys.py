"""WireGuard keys as the files hold them, handled so that no secret outlives its line.

A key is 32 bytes written as 44 characters of base64 ending in ``=`` (what ``wg genkey``
prints; wg refuses anything else). A private key is turned into its public key at once
(X25519, the same code that computes a lab node's public key in process) and dropped; a
preshared key becomes a digest, enough to tell whether two files agree and useless to anyone
else. ``redact`` takes every key-shaped word out of text that is about to be shown.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re

# the last character before '=' carries 4 bits of the key and 2 zero bits
KEY_RE = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")
KEY_WORD_RE = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")


def key_bytes(text: str) -> bytes | None:
    """The 32 bytes of a key in wg's base64, or None when it is not one."""
    if not KEY_RE.match(text):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def public_of(private: bytes) -> str:
    """The public key (base64) of a private key's 32 bytes; the bytes are not kept."""
    from ..nodes.uapi import x25519_base
    return base64.b64encode(x25519_base(private)).decode()


def digest(secret: bytes) -> str:
    """A one-way fingerprint of a preshared key: equal keys, equal digests; nothing more."""
    return hashlib.sha256(b"wgtrace preshared key\0" + secret).hexdigest()[:16]


def redact(text: str) -> str:
    """``text`` with every key-shaped word replaced, for anything shown to a person."""
    return KEY_WORD_RE.sub("(key)", text)
