"""Render the RouterOS CLI lines the responder sends (pure; no I/O).

Only ``ipaddress`` objects are ever rendered as addresses: anything else raises TypeError before
a single character of a command exists, so text from a packet or an alert can never reach a router.
List and script names are checked against a strict alphabet (letters, digits, ``-_.``).
"""

from __future__ import annotations

import ipaddress
import re

from responder.routeros.duration import clamp_timeout, format_duration
from responder.routeros.quoting import quote_value

Address = ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network

IPV4_LIST_PATH = "/ip firewall address-list"
IPV6_LIST_PATH = "/ipv6 firewall address-list"
COMMENT_MAX_CHARS = 128  # long enough for "sid message", short enough to keep `print` lines readable

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")  # list and script names: nothing to quote, nothing to inject
_ADDRESS_TYPES = (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network)


def check_name(what: str, name: object) -> str:
    """``name`` if it is a safe RouterOS list/script name, else ValueError naming ``what``."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"{what}: {name!r} is not a valid name (1-63 letters, digits, '-', '_' or '.')")
    return name


def _require_address(address: object) -> Address:
    # bool/str/bytes/int all refused: only what ipaddress already accepted may be rendered.
    if not isinstance(address, _ADDRESS_TYPES):
        raise TypeError(f"only ipaddress addresses or networks are rendered, got {type(address).__name__}")
    return address


def family_path(address: object) -> str:
    """The address-list menu for ``address``'s family."""
    return IPV4_LIST_PATH if _require_address(address).version == 4 else IPV6_LIST_PATH


def render_address(address: object) -> str:
    """The router's own spelling: IPv4 host bare, IPv6 host as /128, networks with their prefix."""
    address = _require_address(address)
    if isinstance(address, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        if address.prefixlen == address.max_prefixlen:
            address = address.network_address
        else:
            return address.with_prefixlen
    return str(address) if address.version == 4 else f"{address}/128"


def render_timeout(timeout_s: float) -> str:
    """A RouterOS duration between 1s and the router's maximum, 35w3d13h13m56s."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s != timeout_s:
        raise TypeError(f"timeout must be a number of seconds, got {timeout_s!r}")
    return format_duration(clamp_timeout(float(timeout_s)))


def clean_comment(text: str) -> str:
    """One line of at most COMMENT_MAX_CHARS: control characters become spaces, runs of spaces collapse."""
    if not isinstance(text, str):
        raise TypeError(f"comment must be str, got {type(text).__name__}")
    printable = "".join(" " if (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029") else c for c in text)
    single = " ".join(printable.split())
    return single[:COMMENT_MAX_CHARS].rstrip()


def make_comment(sid: str, reason: str) -> str:
    """The comment the responder puts on its entries: ``tzsp-ips [sid] reason``."""
    parts = ["tzsp-ips"] + ([f"[{sid}]"] if sid else []) + ([reason] if reason else [])
    return clean_comment(" ".join(parts))


def _find(list_name: str, address: object) -> str:
    return f"[find list={check_name('list', list_name)} address={render_address(address)}]"


def render_add(family: str | None, list_name: str, address: object, timeout_s: float | None, comment: str) -> str:
    """``add`` of one timed entry, or with ``timeout_s`` None a static one (kept across reboots; the
    responder removes it itself). ``family`` is the menu path or None to take it from the address."""
    path = family_path(address)
    if family is not None and family != path:
        raise ValueError(f"{address} belongs in {path!r}, not {family!r}")
    words = [path, "add", f"list={check_name('list', list_name)}", f"address={render_address(address)}"]
    if timeout_s is not None:
        words.append(f"timeout={render_timeout(timeout_s)}")
    cleaned = clean_comment(comment)
    if cleaned:
        words.append(f"comment={quote_value(cleaned)}")
    return " ".join(words)


# One SSH exec line holding many adds. RouterOS documents no limit on an exec line's length (the
# manual only says its SSH server takes one line, no newline); the tightest cap on an SSH exec
# request found in use is dropbear's 9000 bytes (MAX_CMD_LEN; VoltiusApp/voltius#85). A batch
# line stays at a third of that: ~17 adds with comments, which already brings SSH to API pace.
BATCH_LINE_MAX = 3000
BATCH_FAILED, BATCH_DONE = "tzsp-ips-failed", "tzsp-ips-done"


def render_guarded(index: int, command: str) -> str:
    """``command`` wrapped so that its failure (a duplicate is one) does not stop the rest of the
    line, and says so: ``tzsp-ips-failed N``. Success says nothing: the line's last word,
    ``tzsp-ips-done``, vouches for every add before it that did not fail (replies.batch_outcomes)."""
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ValueError(f"index must be a non-negative int, got {index!r}")
    return f':do {{{command}}} on-error={{:put "{BATCH_FAILED} {index}"}}'


def render_batches(commands: list[str], max_chars: int = BATCH_LINE_MAX) -> list[tuple[list[int], str]]:
    """The ``commands`` (rendered by render_add and friends), each guarded, packed in order into as
    few ``;``-joined exec lines of at most ``max_chars`` as fit, each ending in ``:put
    "tzsp-ips-done"``: ``(indices in commands, line)``."""
    done = f'; :put "{BATCH_DONE}"'
    room = max_chars - len(done)
    batches: list[tuple[list[int], str]] = []
    indices: list[int] = []
    parts: list[str] = []
    length = 0
    for index, command in enumerate(commands):
        guarded = render_guarded(index, command)
        if len(guarded) > room:
            raise ValueError(f"one command is longer ({len(guarded)}) than a batch line may hold ({room})")
        if parts and length + 2 + len(guarded) > room:
            batches.append((indices, "; ".join(parts) + done))
            indices, parts, length = [], [], 0
        length += len(guarded) + (2 if parts else 0)
        indices.append(index)
        parts.append(guarded)
    if parts:
        batches.append((indices, "; ".join(parts) + done))
    return batches


def render_remove(list_name: str, address: object) -> str:
    """Remove every entry for ``address`` in the list (an empty match removes nothing, silently)."""
    return f"{family_path(address)} remove {_find(list_name, address)}"


def render_set_timeout(list_name: str, address: object, timeout_s: float) -> str:
    """Re-arm the timeout of the existing entry (the "refresh" scripts use)."""
    return f"{family_path(address)} set {_find(list_name, address)} timeout={render_timeout(timeout_s)}"


def render_print(list_name: str, family: int = 4) -> str:
    """One entry per line, ``key=value`` (terse), restricted to the list; replies.parse_address_list reads it."""
    if family not in (4, 6):
        raise ValueError(f"family must be 4 or 6, got {family!r}")
    path = IPV4_LIST_PATH if family == 4 else IPV6_LIST_PATH
    return f"{path} print terse where list={check_name('list', list_name)}"


def render_print_as_value(list_name: str, family: int = 4) -> str:
    """The ``:put [print as-value]`` variant (one ``;``-joined line); parse_address_list reads it too."""
    return f":put [{render_print(list_name, family).replace(' print terse ', ' print as-value ')}]"


def render_script_block(address: object, script: str) -> str:
    """The classic mode of the wiki's router script, in one exec so the global cannot race."""
    address = _require_address(address)
    # Bare, as the wiki writes it: RouterOS then types the global as ip/ip6, which `address=$ip` expects.
    shown = (
        str(address) if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else render_address(address)
    )
    return f":global ip {shown}; /system script run {check_name('script', script)}"


def render_resource() -> str:
    """``/system resource print``: replies.parse_uptime reads its ``uptime:`` line."""
    return "/system resource print"
