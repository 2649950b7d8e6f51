"""Errors from talking to a router. Each names the router and says what to fix."""

from __future__ import annotations


class RouterError(Exception):
    """Base: something went wrong with router ``router``; str() says which and what to do."""

    def __init__(self, router: str, message: str) -> None:
        super().__init__(f"router {router}: {message}")
        self.router = router
        self.message = message


class RouterUnreachable(RouterError):
    """Connect refused or timed out, handshake failed, or the connection was lost."""


class HostKeyRefused(RouterError):
    """The router's host key is not in known_hosts, or differs from the recorded one."""

    def __init__(self, router: str, message: str, *, fingerprint: str = "", reason: str = "unknown") -> None:
        super().__init__(router, message)
        self.fingerprint = fingerprint
        self.reason = reason  # "unknown" | "changed" | "revoked"


class AuthenticationFailed(RouterError):
    """The router refused our key or password."""


class SecretRefused(RouterError):
    """The configured password source cannot be used (file readable by others, unset variable...)."""


class CommandTimeout(RouterError):
    """The router did not finish a command in time; the connection has been dropped."""


class RouterCommandError(RouterError):
    """The router answered a command with an error text (RouterOS prints errors on stdout)."""

    def __init__(self, router: str, message: str, *, kind: str = "other", output: str = "") -> None:
        super().__init__(router, message)
        self.kind = (
            kind  # permission | bad-command | syntax | expected-end | out-of-range | no-such-item | duplicate | other
        )
        self.output = output
