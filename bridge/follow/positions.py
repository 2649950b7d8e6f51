"""Where the alert follower stopped reading, kept across restarts.

A ``Position`` names one file by device and inode (a path can point at a new file after a
rotation) and proves it is still the same file with a fingerprint of its first bytes (an inode
number can be reused by a different file once the old one is deleted). ``PositionStore`` keeps
one position per followed path in a small JSON file in the state directory, written atomically
(temporary file, fsync, rename) so a crash leaves either the old or the new state, never half.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 256  # how much of a file's beginning identifies it
POSITIONS_FILE = "follow-positions.json"
_FORMAT_VERSION = 1


def fingerprint(head: bytes) -> str:
    """Identify a file by its first bytes: ``sha256:<length>:<hex>`` of at most FINGERPRINT_BYTES.

    The length is part of the value because a young file is shorter than FINGERPRINT_BYTES;
    a later check hashes exactly that many bytes of the candidate file.
    """
    head = head[:FINGERPRINT_BYTES]
    return f"sha256:{len(head)}:{hashlib.sha256(head).hexdigest()}"


def fingerprint_length(value: str) -> int:
    """How many leading bytes ``value`` covers; -1 when it is not a fingerprint we wrote."""
    parts = value.split(":")
    if len(parts) != 3 or parts[0] != "sha256" or not parts[1].isdigit():
        return -1
    return int(parts[1])


def fingerprint_matches(value: str, head: bytes) -> bool:
    """Whether a file starting with ``head`` is the file ``value`` was taken from."""
    length = fingerprint_length(value)
    if length < 0 or len(head) < length:
        return False
    return fingerprint(head[:length]) == value


def read_head(path: str, length: int = FINGERPRINT_BYTES) -> bytes | None:
    """The first ``length`` bytes of ``path`` (fewer if it is shorter); None if unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read(length)
    except OSError:
        return None


@dataclass(frozen=True)
class Position:
    """A point in one file: after ``offset`` bytes, ``line`` complete lines have been handled.

    ``path`` is the followed path (the key), not necessarily where the file lives now: after a
    rotation the same device+inode is found again under a sibling name such as ``name.1``.
    """

    path: str
    device: int
    inode: int
    offset: int
    line: int
    fingerprint: str
    # The file's modification time when it was read (0: not known, an older positions file).
    # Only a hint, not part of the identity: if the file is gone, rotated files modified since
    # were written after it and are read; older ones were read already.
    mtime_ns: int = field(default=0, compare=False)

    @classmethod
    def from_json(cls, data: object) -> Position:
        if not isinstance(data, dict):
            raise ValueError("a position is not an object")
        try:
            pos = cls(
                path=data["path"],
                device=data["device"],
                inode=data["inode"],
                offset=data["offset"],
                line=data["line"],
                fingerprint=data["fingerprint"],
                mtime_ns=data.get("mtime_ns", 0),
            )
        except KeyError as e:
            raise ValueError(f"a position lacks {e.args[0]!r}") from None
        for name in ("device", "inode", "offset", "line", "mtime_ns"):
            value = getattr(pos, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"position {name} is not a non-negative integer: {value!r}")
        if not isinstance(pos.path, str) or not pos.path:
            raise ValueError("position path is not a non-empty string")
        if not isinstance(pos.fingerprint, str) or fingerprint_length(pos.fingerprint) < 0:
            raise ValueError(f"position fingerprint is malformed: {pos.fingerprint!r}")
        return pos


class PositionStore:
    """The positions of all followed paths, in ``<state_dir>/follow-positions.json``.

    ``set`` changes memory only; ``save`` makes the change durable. ``load`` never raises for
    a bad file: it logs, moves the file aside as ``.corrupt`` and starts with no positions.
    """

    def __init__(self, state_dir: str, filename: str = POSITIONS_FILE):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, filename)
        self._positions: dict[str, Position] = {}
        self._dirty = False

    def load(self) -> dict[str, Position]:
        self._positions = {}
        self._dirty = False
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return {}
        except OSError as e:
            log.error("cannot read positions from %s (%s); starting with none", self.path, e)
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("version") != _FORMAT_VERSION:
                raise ValueError(f"not a version {_FORMAT_VERSION} positions file")
            entries = data.get("positions")
            if not isinstance(entries, dict):
                raise ValueError("'positions' is not an object")
            positions = {}
            for key, entry in entries.items():
                pos = Position.from_json(entry)
                if pos.path != key:
                    raise ValueError(f"entry {key!r} names another path {pos.path!r}")
                positions[key] = pos
        except (ValueError, UnicodeDecodeError) as e:
            self._set_aside(str(e))
            return {}
        self._positions = positions
        return dict(positions)

    def _set_aside(self, why: str) -> None:
        aside = self.path + ".corrupt"
        try:
            os.replace(self.path, aside)
            where = f"moved to {aside}"
        except OSError:
            where = "left in place"
        log.error(
            "positions file %s is unreadable (%s), %s; every followed file starts afresh",
            self.path,
            why,
            where,
        )

    def get(self, path: str) -> Position | None:
        return self._positions.get(path)

    def __iter__(self) -> Iterator[Position]:
        return iter(list(self._positions.values()))

    def set(self, position: Position) -> None:
        if self._positions.get(position.path) != position:
            self._positions[position.path] = position
            self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def save(self) -> None:
        """Write all positions atomically; raises OSError if the state directory is unusable."""
        os.makedirs(self.state_dir, exist_ok=True)
        document = {
            "version": _FORMAT_VERSION,
            "positions": {key: asdict(pos) for key, pos in sorted(self._positions.items())},
        }
        data = json.dumps(document, indent=1).encode("utf-8")
        tmp = f"{self.path}.tmp.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):  # a half-written copy must not hold what space is left
                os.unlink(tmp)
            raise
        _fsync_directory(self.state_dir)
        self._dirty = False


def _fsync_directory(path: str) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
