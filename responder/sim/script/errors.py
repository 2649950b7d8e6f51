"""The error a running line prints and stops at (``no such item``, ``failure: ...``)."""

from __future__ import annotations


class RuntimeCliError(Exception):
    """Printed as-is; stops the rest of the line."""

    def __init__(self, text: str, kind: str = "other"):
        super().__init__(text)
        self.text = text
        self.kind = kind
