"""``/system logging`` of the simulated router: which topics go to which action, and what a
remote action sends (ROUTEROS.md §7). Pure: messages in, (host, port, datagram) out; the
SimRouter sends them.

- actions: the built-in ``memory``, ``disk``, ``echo``, ``remote`` and those added with
  ``/system logging action add name=X target=remote remote=IP remote-port=N``
  (``bsd-syslog=yes`` on v6-7.17, ``remote-log-format=syslog`` on 7.18+, for the BSD form);
- rules: ``/system logging add topics=firewall action=X``; a fresh router has ``info``,
  ``error``, ``warning`` to memory and ``critical`` to echo;
- datagrams: by default ``<topics> <message>`` (``firewall,info tzsp-ips input: ...``), no time
  and no host; in the BSD form ``<30>Mmm dd hh:mm:ss <identity> <message>`` (daemon.info).
"""

from __future__ import annotations

import ipaddress
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass

from responder.sim.router.memory_log import MemoryLog

_SYSLOG_INFO = 30  # facility daemon (3) * 8 + severity info (6)


class LoggingError(ValueError):
    """A value the router refuses; the text is RouterOS's."""


@dataclass
class LogAction:
    number: int
    name: str
    target: str = "memory"  # memory | disk | echo | remote
    remote: str = "0.0.0.0"
    remote_port: int = 514
    bsd_syslog: bool = False
    remote_log_format: str = "default"  # default | syslog | cef (7.18+)
    default: bool = False  # a built-in action


@dataclass
class LogRule:
    number: int
    topics: tuple[str, ...]
    action: str
    prefix: str = ""
    disabled: bool = False
    default: bool = False

    def wants(self, topics: Sequence[str]) -> bool:
        """Every listed topic present, every ``!topic`` absent."""
        for topic in self.topics:
            if topic.startswith("!"):
                if topic[1:] in topics:
                    return False
            elif topic not in topics:
                return False
        return True


def parse_remote(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise LoggingError("invalid value for argument remote") from None


def parse_port(text: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) < 65536:
        raise LoggingError("invalid value for argument remote-port")
    return int(text)


class Logging:
    def __init__(self) -> None:
        self.actions: list[LogAction] = [
            LogAction(1, "memory", "memory", default=True),
            LogAction(2, "disk", "disk", default=True),
            LogAction(3, "echo", "echo", default=True),
            LogAction(4, "remote", "remote", default=True),
        ]
        self.rules: list[LogRule] = [
            LogRule(1, ("info",), "memory", default=True),
            LogRule(2, ("error",), "memory", default=True),
            LogRule(3, ("warning",), "memory", default=True),
            LogRule(4, ("critical",), "echo", default=True),
        ]
        self.memory = MemoryLog()  # what the memory action keeps: /log
        self._next = 5

    def take_number(self) -> int:
        number, self._next = self._next, self._next + 1
        return number

    def action(self, name: str) -> LogAction | None:
        return next((a for a in self.actions if a.name == name), None)

    def emit(self, topics: Sequence[str], message: str, now: float, identity: str) -> list[tuple[str, int, bytes]]:
        """Route one message; returns the datagrams remote actions send."""
        out: list[tuple[str, int, bytes]] = []
        done = set()
        for rule in self.rules:
            if rule.disabled or not rule.wants(topics) or rule.action in done:
                continue
            done.add(rule.action)  # one message goes to an action once, however many rules send it there
            action = self.action(rule.action)
            if action is None:
                continue
            text = f"{rule.prefix} {message}" if rule.prefix else message
            if action.target == "memory":
                self.memory.add(tuple(topics), text, now)
            elif action.target == "remote":
                out.append((action.remote, action.remote_port, datagram(action, topics, text, now, identity)))
        return out


def datagram(action: LogAction, topics: Sequence[str], message: str, now: float, identity: str) -> bytes:
    if action.bsd_syslog or action.remote_log_format == "syslog":
        moment = _time.gmtime(now)  # the simulated router keeps UTC
        stamp = f"{_time.strftime('%b', moment)} {moment.tm_mday:2d} {_time.strftime('%H:%M:%S', moment)}"
        return f"<{_SYSLOG_INFO}>{stamp} {identity} {message}".encode()
    return f"{','.join(topics)} {message}".encode()
