"""What one running line or script carries (``Scope``), and what the helpers of the interpreter
may ask of it (``Running``): described here so that builtins, export, singletons and reading do
not import the interpreter that imports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from responder.sim.router.state import RouterState


@dataclass
class Scope:
    """One running line or script: whose it is, what it may do, its variables and item numbers.

    ``frames``: the ``:local`` variables of each enclosing block, innermost last. ``declared``:
    the globals this line or script declared (a terminal session keeps them from line to line)."""

    user: str
    policies: frozenset
    out: list[str]
    frames: list[dict[str, object]] = field(default_factory=lambda: [{}])
    declared: set = field(default_factory=set)
    numbers: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    depth: int = 0
    turns: list[int] = field(default_factory=lambda: [0])  # loop turns so far, shared with scripts it runs

    def frame_of(self, name: str) -> dict[str, object] | None:
        for frame in reversed(self.frames):
            if name in frame:
                return frame
        return None


class Running(Protocol):
    """The interpreter as its helper modules use it (``responder.sim.script.interpreter.Interpreter``)."""

    state: RouterState

    @property
    def flavour(self) -> str: ...

    def run_block(self, block: object, scope: Scope, variables: dict[str, object] | None = None) -> object: ...

    def evaluate(self, value: object, scope: Scope) -> object: ...

    @staticmethod
    def operate_call(function: object, arguments: list[object]) -> object: ...

    def log(self, topics: tuple[str, ...], message: str) -> None: ...
