"""The errors of the router's state and RouterOS item numbers (``*1A``): shared by the state and
every table, imported by them, importing none of them."""

from __future__ import annotations


class StateError(Exception):
    """A refusal the router prints as-is (``failure: already have such entry``, ``no such item``)."""

    def __init__(self, text: str, *, kind: str = "other"):
        super().__init__(text)
        self.text = text
        self.kind = kind


class ArgumentError(StateError):
    """A value the menu cannot take (``invalid value for argument timeout``)."""


def invalid_value(name: str) -> ArgumentError:
    """RouterOS's refusal of a value given for argument ``name``."""
    return ArgumentError(f"invalid value for argument {name}", kind="other")


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
