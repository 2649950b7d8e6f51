"""One router over one SSH transport: block, unblock, list, uptime.

The session connects lazily (the first command after a drop reconnects once); retrying with
backoff is the caller's job (responder/sync/backoff.py). Every reply goes through
routeros.replies.classify, because RouterOS prints errors on stdout with exit status 0.
"""

from __future__ import annotations

import re
import threading

from responder.config import RouterConfig
from responder.errors import RouterCommandError
from responder.routeros import commands, replies
from responder.transport import secrets
from responder.transport.ssh import SshConnection

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

ADDED, REFRESHED, PRESENT = "added", "refreshed", "present"


class RouterSession:
    def __init__(self, cfg: RouterConfig, *, password: str | None = None) -> None:
        commands.check_name(f"routers.{cfg.name}.list", cfg.list)
        if cfg.mode == "script":
            commands.check_name(f"routers.{cfg.name}.script", cfg.script)
        self.cfg = cfg
        self._password = password
        self._connection: SshConnection | None = None
        self._lock = threading.RLock()
        self._has_ipv6 = True  # a v6 router without the ipv6 package answers "bad command name"

    # -- connection -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.active

    def connect(self) -> None:
        """(Re)connect: raises RouterUnreachable, HostKeyRefused, AuthenticationFailed or SecretRefused."""
        with self._lock:
            self.close()
            password = self._password if self._password is not None else secrets.read_password(self.cfg)
            connection = SshConnection(
                name=self.cfg.name,
                host=self.cfg.host,
                port=self.cfg.port,
                user=self.cfg.user,
                known_hosts_path=self.cfg.known_hosts,
                pkey=secrets.load_private_key(self.cfg),
                password=password,
                connect_timeout=self.cfg.connect_timeout,
                keepalive=self.cfg.keepalive,
            )
            connection.connect()
            self._connection = connection

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()

    def __enter__(self) -> RouterSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- raw commands -----------------------------------------------------------------------
    def _exec(self, command: str) -> str:
        """Output of one command (CRLF -> LF, colour codes removed), error texts not yet judged."""
        with self._lock:
            if not self.connected:
                self.connect()
            result = self._connection.exec(command, self.cfg.command_timeout)
        text = _ANSI_RE.sub("", result.stdout + result.stderr).replace("\r\n", "\n")
        if not text.strip() and result.exit_status not in (0, None):
            raise RouterCommandError(
                self.name,
                f"exit status {result.exit_status} without output (command: {command})",
                kind="other",
                output="",
            )
        return text

    def open_exec(self, command: str):
        """A paramiko channel running ``command`` on this session's transport (connects if needed)."""
        with self._lock:
            if not self.connected:
                self.connect()
            return self._connection.open_exec(command, self.cfg.command_timeout)

    def _check(self, command: str) -> replies.Reply:
        reply = replies.classify(self._exec(command))
        if not reply.ok and reply.kind != "duplicate":
            raise replies.command_error(self.name, reply, command)
        return reply

    def run(self, command: str) -> str:
        """Output of one command; any error reply (duplicates included) raises RouterCommandError."""
        text = self._exec(command)
        reply = replies.classify(text)
        if not reply.ok:
            raise replies.command_error(self.name, reply, command)
        return text

    # -- what the responder does ------------------------------------------------------------
    def add_block(self, address, timeout_s: float | None, comment: str) -> str:
        """Block ``address`` for ``timeout_s`` (None: a static entry): "added", "refreshed" (was there,
        timeout re-armed, or a dynamic entry replaced by the static one asked for) or "present"."""
        if self.cfg.mode == "script":
            command = commands.render_script_block(address, self.cfg.script)
        else:
            command = commands.render_add(None, self.cfg.list, address, timeout_s, comment)
        if self._check(command).ok:
            return ADDED
        return self._already_there(address, timeout_s, command)

    def _already_there(self, address, timeout_s: float | None, command: str, listed: dict | None = None) -> str:
        """The router had ``address`` already ("already have such entry"): "present", or "refreshed"
        once re-armed. ``listed``: the family's entries when the caller has just listed them."""
        if (not self.cfg.refresh_existing and timeout_s is not None) or self.cfg.mode == "script":
            return PRESENT
        # Re-arm only an entry that would expire sooner than asked: never shorten a longer block,
        # and never put a timeout on a permanent (static) entry an admin added by hand.
        key = replies.normalise_address(commands.render_address(address))
        existing = (listed if listed is not None else self._list_family(address.version)).get(key)
        if timeout_s is None:
            if existing is None or existing.timeout_s is None:
                return PRESENT  # already static
            # A dynamic entry would run out (or vanish in a reboot) before the block ends: replace it.
            self._check(commands.render_remove(self.cfg.list, address))
            self._check(command)
            return REFRESHED
        if existing is None or existing.timeout_s is None or existing.timeout_s >= timeout_s:
            return PRESENT
        self._check(commands.render_set_timeout(self.cfg.list, address, timeout_s))
        return REFRESHED

    def add_blocks(self, blocks) -> list:
        """Many blocks, ~17 per exec (commands.render_batches): one outcome per block, in order, as
        add_block gives it, or the RouterCommandError for that block alone.

        Each add is wrapped so that a duplicate or an error does not stop the rest of the line.
        The router says only *that* an add failed, not why. A failed block found in the list (one
        listing per family and batch) was a duplicate, handled as add_block does; any other
        failed block, or one the line did not reach, goes once more on its own, which reads the
        reason from the router.
        """
        blocks = list(blocks)
        if self.cfg.mode == "script":  # the script's :global is per exec: one block at a time
            return [self._one_block(*block) for block in blocks]
        adds = [commands.render_add(None, self.cfg.list, a, t, c) for a, t, c in blocks]  # all, before sending
        outcomes: list = [None] * len(blocks)
        for indices, line in commands.render_batches(adds):
            said = replies.batch_outcomes(self._exec(line), indices)
            listed: dict[int, dict] = {}
            for index in indices:
                if said[index]:
                    outcomes[index] = ADDED
                    continue
                address, timeout_s, comment = blocks[index]
                try:
                    if said[index] is False and address.version not in listed:
                        listed[address.version] = self._list_family(address.version)
                    key = replies.normalise_address(commands.render_address(address))
                    if said[index] is False and key in listed[address.version]:
                        outcomes[index] = self._already_there(address, timeout_s, adds[index], listed[address.version])
                    else:
                        outcomes[index] = self.add_block(address, timeout_s, comment)
                except RouterCommandError as exc:
                    outcomes[index] = exc
        return outcomes

    def _one_block(self, address, timeout_s: float | None, comment: str):
        try:
            return self.add_block(address, timeout_s, comment)
        except RouterCommandError as exc:
            return exc

    def remove_block(self, address) -> bool:
        """Remove ``address`` from the list; True if an entry was there."""
        key = replies.normalise_address(commands.render_address(address))
        present = key in self._list_family(address.version)
        self._check(commands.render_remove(self.cfg.list, address))
        return present

    def _list_family(self, family: int) -> dict:
        if family == 6 and not self._has_ipv6:
            return {}
        try:
            output = self.run(commands.render_print(self.cfg.list, family))
        except RouterCommandError as exc:
            if family == 6 and exc.kind == "bad-command":
                self._has_ipv6 = False
                return {}
            raise
        return replies.entries_of_list(replies.parse_address_list(output), self.cfg.list)

    def list_blocks(self) -> dict:
        """Entries of the configured list, IPv4 and IPv6, keyed by normalised address."""
        entries = self._list_family(4)
        entries.update(self._list_family(6))
        return entries

    def uptime(self) -> float:
        """Seconds since the router booted (a decrease means it rebooted and lost its timed entries)."""
        return replies.parse_uptime(self.run(commands.render_resource()))
