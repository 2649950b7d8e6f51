"""What a router is provisioned from (ProvisionPlan) and the checks on its inputs (pure).

Addresses come only from ``ipaddress`` objects, names only after commands.check_name; everything
else is rendered through quote_value: nothing in the script comes verbatim from input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import struct
from dataclasses import dataclass

from responder.events import IPAddress

TZSP_PORT = 37008
TZSP_MODES = ("mangle", "sniffer", "none")
BLOCK_IN = ("filter", "raw")
KEY_TYPES = ("ssh-ed25519", "ssh-rsa")
COMMENT = "tzsp-ips"  # every item we make carries it: the script and --check find them by it
STEALTH_LOG_PREFIX = "tzsp-ips-stealth"
STEALTH_LOG_RATE = 10  # lines a second once the burst (twice scan.ports) is spent


def stealth_limit(flavour: str, scan_ports: int) -> str:
    """The ``limit=`` of the input rule logging stealth probes: the burst must carry a fast scan
    past the detector's threshold on its own (a LAN nmap sends 1000 probes in 0.1 s)."""
    burst = max(30, 2 * scan_ports)
    mode = ":packet" if flavour == "v7" else ""  # v7 spells the mode; v6 knows only packets
    return f"{STEALTH_LOG_RATE},{burst}{mode}"


class ProvisionError(ValueError):
    """An input the provisioning script cannot be made from (bad key, bad address...)."""


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes

    @property
    def openssh(self) -> str:
        return f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}"

    @property
    def owner(self) -> str:
        """The comment we give the key on the router (its key-owner): our mark and which key it is."""
        return f"{COMMENT}-{hashlib.sha256(self.blob).hexdigest()[:16]}"


def parse_public_key(text: str) -> PublicKey:
    """An OpenSSH one-line ed25519 or RSA public key (``type base64 [comment]``); the comment is dropped."""
    fields = text.strip().split()
    if len(fields) < 2:
        raise ProvisionError("expected an OpenSSH public key line: 'ssh-ed25519 AAAA... [comment]'")
    key_type, encoded = fields[0], fields[1]
    if key_type not in KEY_TYPES:
        raise ProvisionError(f"RouterOS takes {' or '.join(KEY_TYPES)} user keys, not {key_type!r}")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ProvisionError("the public key is not valid base64") from None
    # The blob starts with its own type as an SSH string; a mismatch means a damaged or swapped key.
    if len(blob) < 4:
        raise ProvisionError("the public key is truncated")
    (length,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + length] != key_type.encode("ascii"):
        raise ProvisionError(f"the public key data does not match its type {key_type!r}")
    return PublicKey(key_type, blob)


@dataclass(frozen=True)
class ProvisionPlan:
    router: str  # the name in our configuration (only shown in the header)
    router_host: str
    this_host: IPAddress  # where the router reaches us: login address, TZSP and syslog target
    user: str = "ips"
    group: str = "tzsp-ips"
    list_name: str = "blacklist"
    public_key: PublicKey | None = None
    throwaway_password: str | None = None  # set with a key, so the account never has an empty password
    password_source: str | None = None  # "the file X" / "$VAR": where the operator keeps the password
    flavour: str = "v7"
    tzsp: str = "mangle"
    tzsp_port: int = TZSP_PORT
    syslog_port: int | None = None  # None: no syslog listener configured, no remote logging
    memory_logging: bool = False  # [scan] routers names it: firewall lines kept in the router's memory log
    transport: str = "ssh"  # "api": the user gets the api policy and the api(-ssl) service is set up
    api_tls: bool = True  # with transport "api": api-ssl with a certificate (8729), else plain api (8728)
    scan_ports: int = 15  # [scan] ports: sizes the stealth log rule's burst
    block_in: str = "filter"  # "raw": drop in /ip firewall raw prerouting, before connection tracking


def check_address(value: object) -> IPAddress:
    if not isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        raise ProvisionError(f"this host must be an ipaddress address, got {type(value).__name__}")
    if value.is_unspecified or value.is_multicast:
        raise ProvisionError(f"{value} cannot be the address the router reaches this host at")
    return value


def check_port(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ProvisionError(f"{what} must be a port number 1-65535, got {value!r}")
    return value


def syslog_port_of(listen: str | None) -> int | None:
    """The port of a ``host:port`` / ``[v6]:port`` listener, or None; ProvisionError if malformed."""
    if not listen:
        return None
    _, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ProvisionError(f"scan.syslog: expected host:port, got {listen!r}")
    return check_port("scan.syslog port", int(port))


def password_source(password_file: str | None, password_env: str | None) -> str | None:
    """Where the operator keeps the router password, for the script's advice line."""
    if password_file:
        return f"the file {password_file}"
    if password_env:
        return f"${password_env}"
    return None


def parse_this_host(text: str) -> IPAddress:
    """``--this-host`` text as an address (ProvisionError otherwise)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ProvisionError(f"--this-host: {text!r} is not an IP address") from None
    return check_address(address)
