"""The RouterOS script that sets a router up for tzsp-ips (pure rendering; the CLI gathers the inputs).

What it creates, in order:
  - a user group with only ``ssh,read,write`` (what address-list blocking needs, ROUTEROS.md section 4);
  - the responder's user in that group, allowed to log in only from this host;
  - our public key for that user (v7 ``ssh-keys add``; v6 needs the file uploaded and imported);
  - a logging rule for new connections and one for stealth probes (TCP without ACK or RST that
    connection tracking calls ``invalid``: FIN, NULL, XMAS...; rate-limited so the log stays small),
    both feeding the port-scan detector, then drop rules for the address list at the top of the
    input and forward chains, for IPv4 and IPv6;
  - TZSP streaming to this host, by the mangle ``sniff-tzsp`` action or by the packet sniffer;
  - remote logging of firewall events to this host.

Addresses are rendered only from ``ipaddress`` objects, names only after commands.check_name,
and every free text through quote_value: nothing in the script comes verbatim from input.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import struct
from dataclasses import dataclass

from responder.events import IPAddress
from responder.routeros.commands import check_name
from responder.routeros.quoting import quote_value

TZSP_PORT = 37008
TZSP_MODES = ("mangle", "sniffer", "none")
KEY_TYPES = ("ssh-ed25519", "ssh-rsa")
COMMENT = "tzsp-ips"
STEALTH_LOG_PREFIX = "tzsp-ips-stealth"
STEALTH_LOG_RATE = 10  # lines a second once the burst is spent; the burst must carry a fast scan past
# the detector's threshold on its own (a LAN nmap sends 1000 probes in 0.1 s): twice scan.ports


def stealth_log_rule(flavour: str, scan_ports: int) -> str:
    """Arguments of the input rule logging stealth probes. A FIN, NULL or XMAS probe (or SYN+FIN)
    to a closed port opens no connection, so RouterOS's connection tracking calls it ``invalid``
    and the ``connection-state=new`` rule never sees it; ``tcp-flags=!ack,!rst`` keeps out the
    invalid packets that answer something (late ACKs, resets of forgotten connections)."""
    burst = max(30, 2 * scan_ports)
    mode = ":packet" if flavour == "v7" else ""  # v7 spells the mode; v6 knows only packets
    return (
        f"chain=input action=log protocol=tcp connection-state=invalid tcp-flags=!ack,!rst "
        f"limit={STEALTH_LOG_RATE},{burst}{mode} log-prefix={STEALTH_LOG_PREFIX} "
        f"comment={quote_value(COMMENT + ': log stealth scan probes, FIN/NULL/XMAS (port-scan detector)')}"
    )


class ProvisionError(ValueError):
    """An input the provisioning script cannot be made from (bad key, bad address...)."""


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes

    @property
    def openssh(self) -> str:
        return f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}"


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
    transport: str = "ssh"  # "api": the user gets the api policy and the api(-ssl) service is set up
    api_tls: bool = True  # with transport "api": api-ssl with a certificate (8729), else plain api (8728)
    scan_ports: int = 15  # [scan] ports: sizes the stealth log rule's burst


def _address(value: object) -> IPAddress:
    if not isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        raise ProvisionError(f"this host must be an ipaddress address, got {type(value).__name__}")
    if value.is_unspecified or value.is_multicast:
        raise ProvisionError(f"{value} cannot be the address the router reaches this host at")
    return value


def _port(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ProvisionError(f"{what} must be a port number 1-65535, got {value!r}")
    return value


def _top_rule(menu: str, args: str) -> str:
    """Add a filter rule above all others (place-before the first rule's id, as numbers need a
    prior ``print``); on an empty table there is no first rule, and appending is the top."""
    first = f"[:pick [{menu} find] 0]"
    return f":do {{ {menu} add {args} place-before={first} }} on-error={{ {menu} add {args} }}"


def render_provision(plan: ProvisionPlan) -> str:
    """The script, one command per line (RouterOS SSH and paste both take single lines)."""
    host = _address(plan.this_host)
    user = check_name("user", plan.user)
    group = check_name("group", plan.group)
    list_name = check_name("list", plan.list_name)
    if plan.flavour not in ("v6", "v7"):
        raise ProvisionError(f"flavour must be v6 or v7, got {plan.flavour!r}")
    if plan.tzsp not in TZSP_MODES:
        raise ProvisionError(f"tzsp must be one of {', '.join(TZSP_MODES)}, got {plan.tzsp!r}")
    tzsp_port = _port("tzsp port", plan.tzsp_port)
    host_prefix = f"{host}/{host.max_prefixlen}"

    if plan.transport not in ("ssh", "api"):
        raise ProvisionError(f"transport must be ssh or api, got {plan.transport!r}")
    login = "API" if plan.transport == "api" else "SSH"
    lines: list[str] = [
        f"# tzsp-ips: set up router {plan.router} ({plan.router_host}) for the IPS host {host}",
        "# Paste into the router's terminal as an administrator, or upload and run /import.",
        "",
        f"# 1. a group with only what address-list blocking over {login} needs, and a user limited to this host",
        f"/user group add name={group} policy={plan.transport},read,write comment={quote_value(COMMENT)}",
    ]
    user_words = [f"/user add name={user} group={group} address={host_prefix}"]
    if plan.throwaway_password is not None:
        user_words.append(f"password={quote_value(plan.throwaway_password)}")
    user_words.append(f"comment={quote_value(COMMENT + ' responder')}")
    lines.append(" ".join(user_words))
    if plan.public_key is not None:
        if plan.flavour == "v7":
            lines.append(f"/user ssh-keys add user={user} key={quote_value(plan.public_key.openssh)}")
        else:
            lines += [
                "# RouterOS v6 imports keys from a file: upload our public key as tzsp-ips.pub, then",
                f"/user ssh-keys import user={user} public-key-file=tzsp-ips.pub",
            ]
        if plan.throwaway_password is not None:
            lines.append("# (the random password above is kept by nobody: the responder logs in with its key)")
    else:
        where = plan.password_source or "your password file"
        lines.append(f"# no key configured: give the user the password kept in {where}: /user set {user} password=...")

    if plan.transport == "api":
        lines += _api_service(plan, host_prefix)
    lines += ["", f"# 2. drop what the responder puts in address list {list_name}, at the top of input and forward"]
    for menu in ("/ip firewall filter", "/ipv6 firewall filter"):
        lines.append(
            _top_rule(
                menu,
                "chain=input action=log connection-state=new log-prefix=tzsp-ips "
                f"comment={quote_value(COMMENT + ': log new connections (port-scan detector)')}",
            )
        )
        lines.append(_top_rule(menu, stealth_log_rule(plan.flavour, plan.scan_ports)))
        for chain, direction in (("input", "src"), ("forward", "src"), ("forward", "dst")):
            comment = quote_value(f"{COMMENT}: drop {direction} in {list_name}")
            lines.append(
                _top_rule(menu, f"chain={chain} action=drop {direction}-address-list={list_name} comment={comment}")
            )

    lines.append("")
    if plan.tzsp == "mangle":
        lines += [
            f"# 3. stream traffic to this host's tzspd (TZSP, UDP {tzsp_port}); acts like passthrough",
            f"/ip firewall mangle add chain=prerouting action=sniff-tzsp sniff-target={host} "
            f"sniff-target-port={tzsp_port} comment={quote_value(COMMENT + ': to tzspd')}",
        ]
    elif plan.tzsp == "sniffer":
        target = f"{host}:{tzsp_port}" if host.version == 4 else f"[{host}]:{tzsp_port}"
        lines += [
            f"# 3. stream traffic to this host's tzspd with the packet sniffer (TZSP, UDP {tzsp_port})",
            f"/tool sniffer set streaming-enabled=yes streaming-server={target} filter-stream=yes",
            "/tool sniffer start",
        ]
    else:
        lines.append("# 3. TZSP streaming: not set up (--tzsp none)")

    lines.append("")
    if plan.syslog_port is not None:
        syslog_port = _port("syslog port", plan.syslog_port)
        lines += [
            f"# 4. send firewall log lines to this host (the [scan] syslog listener, UDP {syslog_port})",
            f"/system logging action add name=tzspips target=remote remote={host} remote-port={syslog_port}",
            "/system logging add topics=firewall action=tzspips",
        ]
    else:
        lines.append("# 4. remote logging: not set up ([scan] syslog is not configured)")
    return "\n".join(lines) + "\n"


def _api_service(plan: ProvisionPlan, host_prefix: str) -> list[str]:
    """The API service, only for this host; for api-ssl a certificate first (without one RouterOS
    offers only anonymous DH, which the responder refuses)."""
    if not plan.api_tls:
        return [
            "",
            "# 1b. the plain API (8728), only for this host: the password crosses the network unencrypted",
            f"/ip service set api address={host_prefix} disabled=no",
        ]
    try:
        san = f"IP:{ipaddress.ip_address(plan.router_host)}"
    except ValueError:
        san = f"DNS:{plan.router_host}"
    return [
        "",
        "# 1b. a certificate for api-ssl (8729), and the service only for this host",
        f"/certificate add name=tzsp-ips-api common-name={quote_value(plan.router_host)} "
        f"subject-alt-name={quote_value(san)} days-valid=3650 key-usage=digital-signature,key-encipherment,tls-server",
        "/certificate sign tzsp-ips-api",
        f"/ip service set api-ssl certificate=tzsp-ips-api address={host_prefix} disabled=no",
        f"# then on the IPS host: snort-bridge trust {plan.router}  (pins this certificate's SHA-256)",
    ]


def syslog_port_of(listen: str | None) -> int | None:
    """The port of a ``host:port`` / ``[v6]:port`` listener, or None; ProvisionError if malformed."""
    if not listen:
        return None
    _, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ProvisionError(f"scan.syslog: expected host:port, got {listen!r}")
    return _port("scan.syslog port", int(port))


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
    return _address(address)
