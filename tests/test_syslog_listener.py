"""The firewall-log listener hears only allowed senders: UDP is spoofable."""

import ipaddress
import socket
import threading
import time

from conftest import free_port

from bridge.config import parse_config
from bridge.scan.syslog_listener import SyslogListener
from bridge.service.parts import syslog_senders
from tzsp.receiver import AllowList

LINE = b"firewall,info input: in:ether1 out:(unknown 0), proto TCP (SYN), 203.0.113.5:4000->192.0.2.1:22, len 60"


def send_from(source, port, payload):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind((source, 0))
        sender.sendto(payload, ("127.0.0.1", port))


def test_only_allowed_senders_are_delivered():
    got, arrived = [], threading.Event()

    def deliver(text, peer, received_at):
        got.append((text, peer[0]))
        arrived.set()

    listener = SyslogListener(f"127.0.0.1:{free_port()}", deliver, AllowList.parse(["127.0.0.1/32"])).start()
    try:
        port = listener.bound[1]
        send_from("127.0.0.2", port, LINE)  # a forger on another address
        deadline = time.monotonic() + 5
        while listener.not_allowed < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        send_from("127.0.0.1", port, LINE)
        assert arrived.wait(5)
    finally:
        listener.stop()
    assert got == [(LINE.decode(), "127.0.0.1")]
    assert listener.not_allowed == 1 and listener.received == 1


def config_text(scan_extra=""):
    return f"""
state_dir = "/tmp/x"
[scan]
syslog = "127.0.0.1:5514"
{scan_extra}
[[routers]]
name = "core1"
host = "192.0.2.1"
password_env = "P"
"""


def test_default_senders_are_the_routers_and_scan_allow_replaces_them():
    routers_only = syslog_senders(parse_config(config_text()))
    assert routers_only.allows(ipaddress.ip_address("192.0.2.1"))
    assert not routers_only.allows(ipaddress.ip_address("192.0.2.2"))
    explicit = syslog_senders(parse_config(config_text('allow = ["10.9.0.0/24"]')))
    assert explicit.allows(ipaddress.ip_address("10.9.0.7"))
    assert not explicit.allows(ipaddress.ip_address("192.0.2.1"))
