"""Credentials for a router: a password from a private file or an environment variable, or a key file.

Never from the command line. Files readable by group or others are refused, as OpenSSH does.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

import paramiko

from responder.config import RouterConfig
from responder.errors import SecretRefused


def _read_private_file(router: str, key: str, path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise SecretRefused(router, f"{key} {path}: cannot open ({exc.strerror})") from None
    try:
        info = os.fstat(fd)  # the file we opened, not whatever the path names a moment later
        if not stat.S_ISREG(info.st_mode):
            raise SecretRefused(router, f"{key} {path}: not a regular file")
        if info.st_mode & 0o077:
            raise SecretRefused(
                router,
                f"{key} {path} is readable by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"run: chmod 600 {path}",
            )
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_password(cfg: RouterConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The router's password from ``password_file`` or ``password_env``; None if neither is set."""
    environ = os.environ if environ is None else environ
    if cfg.password_file:
        text = _read_private_file(cfg.name, "password_file", cfg.password_file).decode("utf-8", errors="strict")
        password = text[:-1] if text.endswith("\n") else text  # one trailing newline is the editor's
        password = password[:-1] if password.endswith("\r") else password
        if not password:
            raise SecretRefused(cfg.name, f"password_file {cfg.password_file} is empty")
        return password
    if cfg.password_env:
        password = environ.get(cfg.password_env)
        if not password:
            raise SecretRefused(cfg.name, f"password_env: environment variable {cfg.password_env} is not set or empty")
        return password
    return None


def load_private_key(cfg: RouterConfig) -> paramiko.PKey | None:
    """The client key from ``key_file`` (ed25519, RSA or ECDSA, OpenSSH or PEM format); None if unset."""
    if not cfg.key_file:
        return None
    _read_private_file(cfg.name, "key_file", cfg.key_file)  # permission check before parsing
    try:
        return paramiko.PKey.from_path(cfg.key_file)
    except paramiko.PasswordRequiredException:
        raise SecretRefused(
            cfg.name,
            f"key_file {cfg.key_file} is protected by a passphrase; "
            "use a key without one, readable only by this service",
        ) from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise SecretRefused(cfg.name, f"key_file {cfg.key_file}: not a usable private key ({exc})") from None
