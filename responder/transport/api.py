"""One router over the RouterOS API (8728, or api-ssl on 8729): RouterSession's interface, another wire.

Block, unblock, list and uptime as API commands over an ``api_connection.ApiConnection``:
``add_blocks`` sends a window of commands in one TCP write, so N blocks cost about one round
trip rather than N. The router judges nothing by text here: an error is a ``!trap`` with a
message, which becomes the same RouterCommandError kinds as over SSH (``failure: already have
such entry`` is a duplicate, and blocking counts it as success).
"""

from __future__ import annotations

from collections.abc import Iterable

from responder.config import RouterConfig
from responder.errors import RouterCommandError
from responder.routeros import commands, replies
from responder.routeros.duration import DurationError, parse_duration
from responder.transport.api_connection import ApiConnection

ADDED, REFRESHED, PRESENT = "added", "refreshed", "present"
_LIST_PATHS = {4: "/ip/firewall/address-list", 6: "/ipv6/firewall/address-list"}
_PROPS = "=.proplist=.id,list,address,timeout,dynamic,disabled,comment"

Outcome = str | RouterCommandError


def needs_refresh(row: dict[str, str], timeout_s: float) -> bool:
    """Re-arm only a dynamic entry that would expire sooner than asked: never shorten a longer
    block, never put a timeout on a static entry an admin added by hand."""
    if row.get("dynamic") != "true" or not row.get("timeout"):
        return False
    try:
        return parse_duration(row["timeout"]) < timeout_s
    except DurationError:
        return False


class ApiSession(ApiConnection):
    """One router over one API connection; the same public interface as router.RouterSession."""

    def __init__(self, cfg: RouterConfig, *, password: str | None = None) -> None:
        commands.check_name(f"routers.{cfg.name}.list", cfg.list)
        if cfg.mode == "script":
            raise ValueError(
                f'routers.{cfg.name}: mode = "script" needs transport = "ssh" '
                "(the API cannot set the script's :global)"
            )
        super().__init__(cfg, password=password)
        self._has_ipv6 = True  # a v6 router without the ipv6 package answers "no such command prefix"

    def __enter__(self) -> ApiSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what the responder does ------------------------------------------------------------
    def _find(self, address) -> list[str]:
        path = _LIST_PATHS[address.version]
        return [f"{path}/print", f"?list={self.cfg.list}", f"?address={commands.render_address(address)}", _PROPS]

    def add_block(self, address, timeout_s: float | None, comment: str) -> str:
        """Block ``address`` for ``timeout_s``: "added", "refreshed" (was there, timeout re-armed) or "present"."""
        [outcome] = self.add_blocks([(address, timeout_s, comment)])
        return _raised(outcome)

    def add_blocks(self, blocks: Iterable[tuple[object, float, str]]) -> list[Outcome]:
        """Many blocks in about three round trips at most (add; look up duplicates; re-arm them).

        One outcome per block, in order: "added" / "refreshed" / "present", or the
        RouterCommandError the router gave for that block (the others are not affected).
        """
        blocks = list(blocks)
        adds = []
        for address, timeout_s, comment in blocks:  # all rendered before anything is sent (TypeError otherwise)
            shown = commands.render_address(address)
            cleaned = commands.clean_comment(comment).encode("utf-8", "replace").decode("utf-8")
            words = [f"{_LIST_PATHS[address.version]}/add", f"=list={self.cfg.list}", f"=address={shown}"]
            if timeout_s is not None:  # None: a static entry (longer than the router's timeouts)
                words.append(f"=timeout={commands.render_timeout(timeout_s)}")
            if cleaned:
                words.append(f"=comment={cleaned}")
            adds.append(words)
        outcomes: list[Outcome] = []
        duplicates = []
        for index, (sentence, reply) in enumerate(zip(adds, self.exchange(adds), strict=True)):
            if reply.trap is None:
                outcomes.append(ADDED)
                continue
            error = self._error(reply.trap, sentence)
            outcomes.append(PRESENT if error.kind == "duplicate" else error)
            if error.kind == "duplicate" and (self.cfg.refresh_existing or blocks[index][1] is None):
                duplicates.append(index)
        if not duplicates:
            return outcomes
        finds = [self._find(blocks[i][0]) for i in duplicates]
        refreshes = []
        for index, sentence, reply in zip(duplicates, finds, self.exchange(finds), strict=True):
            if reply.trap is not None:
                outcomes[index] = self._error(reply.trap, sentence)
                continue
            address, timeout_s, _ = blocks[index]
            row = next((r for r in reply.rows if r.get("disabled") != "true"), None)
            if row is None or not row.get(".id"):
                continue
            path = _LIST_PATHS[address.version]
            if timeout_s is None:
                # Static asked, a dynamic entry there: it would run out (or vanish in a reboot) first.
                if row.get("dynamic") == "true":
                    refreshes.append((index, [f"{path}/remove", f"=.id={row['.id']}"]))
            elif needs_refresh(row, timeout_s):
                refreshes.append(
                    (index, [f"{path}/set", f"=.id={row['.id']}", f"=timeout={commands.render_timeout(timeout_s)}"])
                )
        readds = []
        for (index, sentence), reply in zip(refreshes, self.exchange([s for _, s in refreshes]), strict=True):
            outcomes[index] = REFRESHED if reply.trap is None else self._error(reply.trap, sentence)
            if reply.trap is None and sentence[0].endswith("/remove"):
                readds.append(index)
        for index, reply in zip(readds, self.exchange([adds[i] for i in readds]), strict=True):
            if reply.trap is not None:
                outcomes[index] = self._error(reply.trap, adds[index])
        return outcomes

    def remove_block(self, address) -> bool:
        """Remove ``address`` from the list; True if an entry was there."""
        [outcome] = self.remove_blocks([address])
        return _raised(outcome)

    def remove_blocks(self, addresses: Iterable[object]) -> list[bool | RouterCommandError]:
        """Remove many addresses in about two round trips (look them up; remove what was found).

        One outcome per address, in order: True if an entry was there, False if not, or the
        RouterCommandError the router gave for that address (the others are not affected).
        """
        addresses = list(addresses)
        finds = [self._find(address) for address in addresses]  # all rendered before anything is sent
        outcomes: list[bool | RouterCommandError] = []
        removes = []
        for index, (sentence, found) in enumerate(zip(finds, self.exchange(finds), strict=True)):
            if found.trap is not None:
                outcomes.append(self._error(found.trap, sentence))
                continue
            ids = [row[".id"] for row in found.rows if row.get(".id")]
            outcomes.append(bool(ids))
            if ids:
                path = _LIST_PATHS[addresses[index].version]
                removes.append((index, [f"{path}/remove", f"=.id={','.join(ids)}"]))
        for (index, sentence), reply in zip(removes, self.exchange([s for _, s in removes]), strict=True):
            if reply.trap is not None:
                error = self._error(reply.trap, sentence)
                if error.kind != "no-such-item":  # it expired in between: gone either way
                    outcomes[index] = error
        return outcomes

    def list_blocks(self) -> dict:
        """Entries of the configured list, IPv4 and IPv6, keyed by normalised address."""
        families = [4, 6] if self._has_ipv6 else [4]
        prints = [[f"{_LIST_PATHS[f]}/print", f"?list={self.cfg.list}", _PROPS] for f in families]
        found: dict = {}
        for family, sentence, reply in zip(families, prints, self.exchange(prints), strict=True):
            if reply.trap is not None:
                error = self._error(reply.trap, sentence)
                if family == 6 and error.kind == "bad-command":
                    self._has_ipv6 = False
                    continue
                raise error
            rows = (replies.entry_from_fields(row) for row in reply.rows)
            found.update(replies.entries_of_list((e for e in rows if e is not None), self.cfg.list))
        return found

    def uptime(self) -> float:
        """Seconds since the router booted (a decrease means it rebooted and lost its timed entries)."""
        rows = self.run("/system/resource/print", "=.proplist=uptime")
        text = rows[0].get("uptime", "") if rows else ""
        try:
            return parse_duration(text)
        except DurationError:
            raise replies.ReplyParseError(f"no uptime in the router's reply: {rows!r:.200}") from None


def _raised(outcome):
    """A one-block outcome as a return value, or raised when it is the router's refusal."""
    if isinstance(outcome, RouterCommandError):
        raise outcome
    return outcome
