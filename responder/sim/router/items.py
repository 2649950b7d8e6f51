"""The errors of the router's state and RouterOS item numbers (``*1A``): shared by the state and
every table, imported by them, importing none of them."""

from __future__ import annotations


class StateError(Exception):
    """A refusal the router prints as-is (``failure: already have such entry``, ``no such item``)."""

    def __init__(self, text: str, *, kind: str = "other"):
        super().__init__(text)
        self.text = text
        self.kind = kind


class NoSuchItem(StateError):
    def __init__(self) -> None:
        super().__init__("no such item", kind="no-such-item")


# ----------------------------------------------------------------------------- addresses


def format_id(number: int) -> str:
    return f"*{number:X}"


def parse_id(text: str) -> int | None:
    if len(text) >= 2 and text[0] == "*":
        try:
            return int(text[1:], 16)
        except ValueError:
            return None
    return None
