"""The parts of the service, each built from a configuration.

One place for them, because `snort-bridge run` builds them at start and again at a reload (and
compares what they would be), and `snort-bridge scan` builds some of them the same way. The
optional libraries (paramiko for the routers, apprise for [notify]) are imported only when the
configuration asks for them.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable

from bridge.config import Config, ConfigError
from bridge.decide.hostaddrs import host_addresses, router_addresses
from bridge.scan.detector import ScanDetector
from responder.feed import NO_FEED, Feed
from tzsp.receiver import AllowList

log = logging.getLogger("snort-bridge")

FIREWALL = "firewall"  # the "format" of a followed file of RouterOS firewall log lines


def check_runnable(config: Config) -> None:
    if not config.alerts and config.scan is None:
        raise ConfigError(
            ["alerts: nothing to follow; expected at least one [[alerts]] table or a [scan] table"], config.path
        )


def followed_sources(config: Config) -> dict[str, str]:
    """Absolute path -> alert format, or FIREWALL for [scan] files."""
    sources = {os.path.abspath(a.path): a.format for a in config.alerts}
    if config.scan is not None:
        for path in config.scan.files:
            sources.setdefault(os.path.abspath(path), FIREWALL)
    return sources


def make_detector(config: Config) -> ScanDetector | None:
    scan = config.scan
    if scan is None:
        return None
    return ScanDetector(ports=scan.ports, window=scan.window, low_port_weight=scan.low_port_weight)


def make_responder(config: Config, feed: Feed = NO_FEED, clock: Callable[[], float] = time.time):
    if not config.routers:
        return None
    from responder.responder import Responder  # paramiko is only loaded when routers are configured

    responder = Responder(config, feed=feed, clock=clock)
    responder.start()
    return responder


def protected_addresses(config: Config) -> list:
    return [*router_addresses(config.routers), *host_addresses()]


def syslog_senders(config: Config) -> AllowList:
    """Who may send firewall log lines: scan.allow, else the configured routers' addresses."""
    assert config.scan is not None
    networks = tuple(config.scan.allow) or tuple(
        ipaddress.ip_network(address) for address in router_addresses(config.routers)
    )
    if not networks:
        log.warning("scan.syslog: no router address and no scan.allow: every firewall log line will be ignored")
    return AllowList(networks)


def make_notifications(config: Config, pending_blocks):
    if config.notify is None:
        return None
    from bridge.notify.delivery import build_notifications  # apprise is loaded only with [notify]

    return build_notifications(config, pending_blocks=pending_blocks)
