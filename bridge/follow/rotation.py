"""Where to read next along a followed file's rotation chain: a pure planner, no I/O.

A followed path (``/var/log/snort/alert_fast.txt``) is the newest link of a chain of files:
its rotated predecessors, oldest first, then the file the path names now. The planner gets a
snapshot of that chain (``FileInfo`` for each file: device/inode, size, mtime and its first
bytes, uncompressed) and a saved ``Position`` and answers: which file holds the saved position
now (under any name, perhaps compressed or copied), at which offset to go on, and every file
rotated after it, in order, up to the current one. The follower (``Tail``, bridge/follow/tail.py) asks
it on start and whenever the file it reads stops being the current one; the same answer serves
a bridge that was stopped, crashed, or is simply several rotations behind.

Rotation schemes, recognised by name (``base`` is the followed file's name, ``stem`` it without
its extension; any of them may end in ``.gz``, ``.bz2`` or ``.xz``):

* logrotate numeric: ``base.1`` (newest) ``base.2`` ... -- a higher number is older;
* Snort 3's size-limited files: ``base.<seconds since 1970>`` -- a higher number is newer;
* logrotate ``dateext``: ``base-20240101`` (any digits and separators after the dash), or
  ``stem-20240101.ext`` with logrotate's ``extension`` option -- sorted as text;
* ``copytruncate``: the copies carry one of the names above; the saved file is then found by
  its fingerprint in a copy (the original, same inode, was emptied).

When the files of one chain use more than one scheme, they are ordered by modification time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bridge.follow.positions import Position, fingerprint_length, fingerprint_matches

Identity = tuple[int, int]  # (device, inode)

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")
SECONDS_FROM = 10**8  # a numeric suffix this large is a Unix time (Snort 3), not a logrotate count
_DATE_RE = re.compile(r"[0-9][0-9_.-]*[0-9]")


@dataclass(frozen=True)
class RotatedName:
    scheme: str  # "numeric" | "seconds" | "date"
    key: object  # sorts older first within the scheme
    compression: str  # "" or one of COMPRESSED_SUFFIXES


def parse_rotated_name(base: str, name: str) -> RotatedName | None:
    """How ``name`` is a rotation of the file named ``base`` (both without directory); None if not."""
    compression = ""
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            compression, name = suffix, name[: -len(suffix)]
            break
    if name.startswith(base + ".") and name[len(base) + 1 :].isdigit():
        number = int(name[len(base) + 1 :])
        if number >= SECONDS_FROM:
            return RotatedName("seconds", number, compression)
        return RotatedName("numeric", -number, compression)
    candidates = [(base + "-", "")]
    dot = base.rfind(".")
    if dot > 0:
        candidates.append((base[:dot] + "-", base[dot:]))  # logrotate's `extension`
    for prefix, extension in candidates:
        if name.startswith(prefix) and name.endswith(extension):
            middle = name[len(prefix) : len(name) - len(extension)] if extension else name[len(prefix) :]
            if sum(c.isdigit() for c in middle) >= 6 and _DATE_RE.fullmatch(middle):
                return RotatedName("date", middle, compression)
    return None


@dataclass(frozen=True)
class FileInfo:
    """One file of a chain as seen now. ``head``: its first bytes (uncompressed), at least as
    many as a fingerprint covers when it has them; ``size``: its (uncompressed) length, None
    when not known without reading it all (a compressed file)."""

    path: str
    identity: Identity
    size: int | None
    mtime_ns: int
    head: bytes | None
    compression: str = ""
    order: tuple = ()  # sort key among rotated files (from order_rotated)

    @property
    def has_data(self) -> bool:
        return self.size is None or self.size > 0


def order_rotated(files: Sequence[tuple[FileInfo, RotatedName]]) -> list[FileInfo]:
    """Rotated files oldest first: by their scheme's key, or by modification time if schemes mix."""
    schemes = {name.scheme for _, name in files}
    if len(schemes) <= 1:
        keyed = [((name.key, info.mtime_ns, info.path), info) for info, name in files]
    else:
        keyed = [((info.mtime_ns, info.path), info) for info, name in files]
    keyed.sort(key=lambda pair: pair[0])
    return [info for _, info in keyed]


@dataclass(frozen=True)
class Step:
    """Read ``file`` from ``offset`` (``line`` complete lines before it); offset -1: at its end."""

    file: FileInfo
    offset: int = 0
    line: int = 0


@dataclass(frozen=True)
class Plan:
    """``found``: how the saved position was found --

    new        nothing saved: the current file from its start (or end)
    same       in the file the followed path names now
    moved      in a rotated file, found by device/inode (renamed)
    copied     in another file with the same first bytes: a copytruncate copy, or the file
               compressed (a new inode), read by uncompressed offset
    truncated  the current file was emptied and no copy holding the unread part was found
    gone       the saved file is nowhere: deleted, or rotated out of the kept number
    missing    nothing to read yet (no saved position and no file, or an empty chain)

    ``steps``: oldest first; the first is where to read now, each later one from its start.
    For same/moved/copied the first step is the saved file itself.
    """

    found: str
    steps: tuple[Step, ...]
    reason: str

    @property
    def later(self) -> tuple[FileInfo, ...]:
        """The files after the saved one (for same/moved/copied), or all of them."""
        first = 1 if self.found in ("same", "moved", "copied") else 0
        return tuple(step.file for step in self.steps[first:])


def _holds(saved: Position, info: FileInfo) -> bool:
    """``info`` starts with the bytes the saved position was taken from and reaches its offset."""
    if info.head is None or not fingerprint_matches(saved.fingerprint, info.head):
        return False
    return info.size is None or info.size >= saved.offset


def plan_chain(
    current: FileInfo | None, rotated: Sequence[FileInfo], saved: Position | None, start_at_end: bool = False
) -> Plan:
    """Where to read: ``current`` is the file the followed path names (None: none now),
    ``rotated`` its rotated predecessors oldest first (order_rotated), ``saved`` the last
    handled position (None: never read)."""
    chain = [*rotated, *([current] if current is not None else [])]
    if saved is None:
        if current is None:
            return Plan("missing", (), "does not exist yet; will start when it appears")
        if start_at_end:
            return Plan("new", (Step(current, -1, -1),), "new file: starting at its end")
        return Plan("new", (Step(current),), "new file: starting at its beginning")

    def after(index: int) -> tuple[Step, ...]:
        return tuple(Step(info) for info in chain[index + 1 :])

    truncated = False
    wanted = (saved.device, saved.inode)
    for index, info in enumerate(chain):
        if info.identity != wanted:
            continue
        if _holds(saved, info):
            found = "same" if info is current else "moved"
            if found == "same" and saved.offset == 0 and saved.mtime_ns:
                # Nothing of it was read, so its bytes prove nothing: copies made since (a
                # copytruncate before the first read) hold the lines it had; they come first.
                copies = [f for f in rotated if f.mtime_ns >= saved.mtime_ns and f.has_data]
                if copies:
                    return Plan(
                        "truncated",
                        (*map(Step, copies), Step(info)),
                        f"copied and truncated before it was read: reading the {len(copies)} copy(ies) first",
                    )
            steps = (Step(info, saved.offset, saved.line), *after(index))
            reason = (
                "same file: resuming at saved offset"
                if found == "same"
                else f"rotated: finishing {info.path} first"
                + (f", then {len(steps) - 1} file(s) rotated after it" if len(steps) > 2 else "")
            )
            return Plan(found, steps, reason)
        truncated = truncated or info is current
    if fingerprint_length(saved.fingerprint) > 0:
        for index, info in enumerate(chain):
            if info.identity != wanted and _holds(saved, info):
                steps = (Step(info, saved.offset, saved.line), *after(index))
                what = "compressed" if info.compression else "copied (copytruncate)"
                return Plan("copied", steps, f"{what}: finishing {info.path} at byte {saved.offset} first")
    # The saved file is gone (or emptied without a copy): whatever was rotated after it.
    # Files older than it were deleted before it; mtime tells apart an older file still here.
    newer = [info for info in rotated if saved.mtime_ns and info.mtime_ns >= saved.mtime_ns]
    steps = tuple(Step(info) for info in newer) + ((Step(current),) if current is not None else ())
    if truncated:
        found, reason = "truncated", "truncated or rewritten, and no copy of its unread part found: starting over"
    else:
        found, reason = "gone", "its saved file is gone (deleted or rotated out)"
    if newer:
        reason += f"; reading the {len(newer)} file(s) rotated after it first"
    if not steps:
        return Plan("missing" if found == "gone" else found, (), reason + "; waiting for the file to appear")
    return Plan(found, steps, reason)


def finished(plan: Plan) -> bool:
    """Whether the writer has moved past the saved file: a later file in the chain has data."""
    return any(info.has_data for info in plan.later)
