"""``provision --apply`` and ``--check`` against a router (the imperative shell around drift.py).

``run`` is any ``command -> output`` callable: an SSH exec channel in production, the simulator's
interpreter in unit tests. Every command is a single line with its own deadline (the caller's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from responder.config import RouterConfig
from responder.provision.drift import Finding, Printed, changes, check, read_commands
from responder.provision.items import Item, desired_items
from responder.provision.plan import ProvisionPlan
from responder.provision.render import exec_lines
from responder.routeros.printed import parse_properties, parse_terse
from responder.routeros.replies import ReplyParseError, classify

Run = Callable[[str], str]


class ReadBackError(Exception):
    """The router's reply to a print was an error or unreadable."""


@dataclass(frozen=True)
class Applied:
    changed: list[str]  # what the run changed, one line each; empty on a second run
    errors: list[str]  # commands the router refused, with its reply
    findings: list[Finding]  # the check after the run

    @property
    def drift(self) -> list[Finding]:
        return [f for f in self.findings if f.drift]


def read_back(run: Run, items: Sequence[Item]) -> Printed:
    printed = {}
    for menu, command in read_commands(items):
        output = run(command)
        try:
            printed[menu] = [parse_properties(output)] if command.endswith(" print") else parse_terse(output)
        except ReplyParseError as exc:
            raise ReadBackError(f"{command}: {exc}") from None
    return printed


def check_router(run: Run, plan: ProvisionPlan) -> list[Finding]:
    items = desired_items(plan)
    return check(items, read_back(run, items))


def apply_plan(run: Run, plan: ProvisionPlan) -> Applied:
    """Run the script block by block (a refused block does not stop the others: each is
    self-contained), then read the router back and compare."""
    items = desired_items(plan)
    before = read_back(run, items)
    errors = []
    for line in exec_lines(plan):
        reply = classify(run(line))
        if not reply.ok:
            shown = line if len(line) <= 160 else line[:157] + "..."
            errors.append(f"{reply.text} (in: {shown})")
    after = read_back(run, items)
    return Applied(changes(items, before, after), errors, check(items, after))


def open_ssh(cfg: RouterConfig, login: RouterConfig | None = None, password: str | None = None):
    """An SSH connection to ``cfg``'s router as ``login`` (default: the responder's own user and
    secrets), its host key checked against cfg's known_hosts; RouterError if that fails."""
    from responder.transport.secrets import load_private_key, read_password
    from responder.transport.ssh import SshConnection

    login = login or cfg
    connection = SshConnection(
        name=cfg.name,
        host=cfg.host,
        port=cfg.port,
        user=login.user,
        known_hosts_path=cfg.known_hosts,
        pkey=load_private_key(login),
        password=password if password is not None else read_password(login),
        connect_timeout=cfg.connect_timeout,
        keepalive=0,
    )
    connection.connect()
    return connection


def runner(connection, timeout: float) -> Run:
    """``run`` over an SSH connection: one exec channel per command, each within ``timeout``."""
    return lambda command: connection.exec(command, timeout).stdout
