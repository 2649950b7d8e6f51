"""OpenSSH known_hosts: read, check a host key, record a trusted one.

Lines are ``[marker] patterns keytype base64 [comment]``; patterns are comma-separated names
(``host`` for port 22, ``[host]:port`` otherwise) with ``*``/``?`` wildcards and ``!`` negation, or a
hashed name ``|1|salt|hmac-sha1``. Malformed lines are skipped, never fatal. Parsing and checking
are pure; load/record are the thin file edges.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

OK, UNKNOWN, CHANGED, REVOKED = "ok", "unknown", "changed", "revoked"


@dataclass(frozen=True)
class KnownHost:
    patterns: tuple  # as written: names, wildcard patterns, or one hashed |1|salt|hash
    key_type: str  # ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256 ...
    key_blob: bytes
    marker: str = ""  # "", "@revoked" or "@cert-authority"


def fingerprint(key_blob: bytes) -> str:
    """``SHA256:<base64 without padding>``, as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def host_name(host: str, port: int = 22) -> str:
    """The name OpenSSH writes and looks up: ``host`` on port 22, ``[host]:port`` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def parse_line(line: str) -> KnownHost | None:
    """One known_hosts line, or None for blanks, comments and anything malformed."""
    fields = line.strip().split()
    if not fields or fields[0].startswith("#"):
        return None
    marker = ""
    if fields[0].startswith("@"):
        marker, fields = fields[0], fields[1:]
        if marker not in ("@revoked", "@cert-authority"):
            return None
    if len(fields) < 3:
        return None
    try:
        blob = base64.b64decode(fields[2], validate=True)
    except (binascii.Error, ValueError):
        return None
    if not blob:
        return None
    return KnownHost(tuple(p for p in fields[0].split(",") if p), fields[1], blob, marker)


def parse_known_hosts(text: str) -> list:
    return [entry for entry in (parse_line(line) for line in text.splitlines()) if entry is not None]


def _hashed_match(pattern: str, name: str) -> bool:
    parts = pattern.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt, wanted = base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest(), wanted)


def _glob(pattern: str, name: str) -> bool:
    # OpenSSH wildcards are only * and ?; brackets are literal ([host]:port), unlike fnmatch.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, name.lower()) is not None


def matches(entry: KnownHost, name: str) -> bool:
    """True if ``name`` (from host_name) matches a pattern of ``entry`` and no negated one."""
    hit = False
    for pattern in entry.patterns:
        if pattern.startswith("|"):
            hit = hit or _hashed_match(pattern, name)
        elif pattern.startswith("!"):
            if _glob(pattern[1:], name):
                return False
        elif _glob(pattern, name):
            hit = True
    return hit


def check(entries: Iterable[KnownHost], name: str, key_blob: bytes) -> str:
    """OK if the key is recorded for ``name``; REVOKED if marked so; CHANGED if ``name`` has other keys; else UNKNOWN."""
    recorded = [e for e in entries if matches(e, name)]
    if any(e.marker == "@revoked" and e.key_blob == key_blob for e in recorded):
        return REVOKED
    plain = [e for e in recorded if not e.marker]
    if any(e.key_blob == key_blob for e in plain):
        return OK
    return CHANGED if plain else UNKNOWN


def recorded_key_types(entries: Iterable[KnownHost], name: str) -> list:
    """Key types recorded for ``name``, so the client can ask for those first (as OpenSSH does)."""
    seen = []
    for entry in entries:
        if not entry.marker and entry.key_type not in seen and matches(entry, name):
            seen.append(entry.key_type)
    return seen


def format_line(name: str, key_type: str, key_blob: bytes) -> str:
    return f"{name} {key_type} {base64.b64encode(key_blob).decode('ascii')}"


def load(path: str) -> list:
    """Entries of the file at ``path``; a missing file has none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return parse_known_hosts(handle.read())
    except FileNotFoundError:
        return []


def record(path: str, name: str, key_type: str, key_blob: bytes) -> None:
    """Trust ``key_blob`` for ``name``: drop lines that name exactly this host, append the new one.

    Written to a temporary file and renamed, so a crash never leaves a half-written known_hosts.
    Hashed or wildcard lines for other names are kept as they are.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        lines = []
    kept = []
    for line in lines:
        entry = parse_line(line)
        if entry is not None and not entry.marker and entry.patterns == (name,):
            continue
        kept.append(line)
    kept.append(format_line(name, key_type, key_blob))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(kept) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
