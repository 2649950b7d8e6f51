"""Priority-1 rules of the public rule sets that fire on ordinary traffic: not acted on by default.

Each entry was seen firing on benign captures (README, "Rule sets": nDPI's public test captures of
browsers, phones, games and peer-to-peer clients, and the calibration set) and says why it is no
attack to block. ``policy.standard_exclusions = false`` acts on them again; ``policy.include_sids``
still acts on any it lists. The list never lowers what blocks real attacks: every entry is a rule
that reports what a user's own program does, or a byte pattern common in ordinary data.

Pure: a table.
"""

from __future__ import annotations

_FILLER = (
    "a run of one byte ({}) as x86 NOOP sled; ordinary binary data (images, compressed and game "
    "streams) carries such runs: fired on benign traffic, and real shellcode comes with an exploit "
    "that other rules see"
)
_P2P = (
    "reports a user's own peer-to-peer client (classtype policy-violation, priority 1): a question of "
    "your acceptable-use policy, not an attack; blocking cuts off your user or the peers they talk to"
)
_MINING = (
    "reports a client speaking the Stratum mining protocol (a user's own miner, or a hijacked host: "
    "look at the host); blocking the pool's address is no remedy either"
)

STANDARD_EXCLUSIONS: dict[str, str] = {
    "1:1390": _FILLER.format("'C', inc ebx"),
    "1:1394": _FILLER.format("'A', inc ecx"),
    "1:2101390": _FILLER.format("'C', inc ebx") + " (ET Open's copy of 1:1390)",
    "1:2101394": _FILLER.format("'A', inc ecx") + " (ET Open's copy of 1:1394)",
    "1:25521": "reports an Android phone's browser by its User-Agent (OS-MOBILE, an inventory rule): every Android phone",
    "1:556": _P2P,
    "1:1432": _P2P,
    "1:2180": _P2P,
    "1:2181": _P2P,
    "1:40840": _MINING,
    "1:40841": _MINING,
    "1:40842": _MINING,
    # ET Open for Snort 2.9 (2017), seen on nDPI's benign captures
    "1:2000334": _P2P,
    "1:2001664": _P2P,
    "1:2007801": _P2P,
    "1:2011699": _P2P,
    "1:2101432": _P2P + " (ET Open's copy of 1:1432)",
    "1:2102180": _P2P + " (ET Open's copy of 1:2180)",
    "1:2017871": _MINING,
    "1:2001805": "reports an ICQ message (ET CHAT, classtype policy-violation): a user's messenger",
    "1:2100235": "reports a Jabber/Google Talk logon (GPL CHAT, classtype policy-violation): a user's messenger",
    "1:2012648": "reports the Dropbox client's LAN sync broadcast (port 17500 to 255.255.255.255): every Dropbox install",
    "1:2006380": (
        "reports an HTTP Basic password sent in the clear by one of your clients (ET POLICY): a weakness of "
        "that client or site, not an attack by either end"
    ),
    "1:2019490": (
        "a router's own NAT-PMP announcement to 224.0.0.1 (port 5350) matches; fired on an ordinary home "
        "router and would block it"
    ),
    "1:2019491": "as 1:2019490: a router's own NAT-PMP announcement, the TCP variant",
    "1:2000345": (
        "any IRC client on a port other than 6667 changing its nick (ET TROJAN, from IRC botnets of old); fired on "
        "an ordinary IRC session and named the IRC network's server"
    ),
    "1:2000352": "as 1:2000345: an IRC client resolving a server name on a port other than 6667",
    "1:2008581": _P2P,
    "1:2016149": (
        "a STUN binding request (ET INFO, classtype policy-violation): every WebRTC, video call and "
        "game client asks a STUN server for its public address; fired on Google's STUN servers"
    ),
    "1:2016150": "as 1:2016149: the STUN binding response, for every call client",
    "1:2008116": "an outbound TFTP write (ET TFTP, classtype policy-violation): phones and network devices fetch and push config that way",
    "1:2008120": "an outbound TFTP read (ET TFTP, classtype policy-violation): phones and network devices fetch config that way",
    "1:2011708": "reports Blizzard's game downloader by its User-Agent (ET GAMES, classtype policy-violation)",
    "1:2012170": "reports a Blizzard game install (ET GAMES, classtype policy-violation)",
    "1:2019101": (
        "reports an outbound Radmin remote-control session (ET POLICY, classtype policy-violation): an "
        "administrator's tool; whether it is allowed is your policy's question"
    ),
}


def exclusion_reason(gid_sid: str) -> str | None:
    """Why ``gid_sid`` is in the shipped exclusion list, or None."""
    return STANDARD_EXCLUSIONS.get(gid_sid)
