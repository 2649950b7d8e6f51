"""Alert files written and rotated the way Snort and logrotate do it, for the follower tests."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable

from bridge.follow.rotation import parse_rotated_name

BASE = "alert_fast.txt"
SCHEMES = ("numeric", "numeric-gz", "copytruncate", "date", "dateext", "seconds")


class History:
    """Real files in ``directory`` written and rotated like Snort and logrotate do."""

    def __init__(self, directory, scheme: str):
        self.dir = str(directory)
        self.path = os.path.join(self.dir, BASE)
        self.scheme = scheme
        self.written = []
        self.rotations = 0

    def write(self, count: int, line: Callable[[int], str] | None = None) -> None:
        """``count`` more lines: ``line(n)`` for the n-th line written (0-based), or a numbered one."""
        with open(self.path, "ab") as f:
            data = []
            for _ in range(count):
                n = len(self.written)
                text = line(n) if line else f"{n:06d} alert from 203.0.113.{n % 250}"
                self.written.append(text)
                data.append(text.encode() + b"\n")
            f.write(b"".join(data))

    def rotated(self):
        return [name for name in os.listdir(self.dir) if parse_rotated_name(BASE, name) is not None]

    def _shift_numeric(self) -> None:
        numbered = sorted(((-parse_rotated_name(BASE, n).key, n) for n in self.rotated()), reverse=True)
        for number, name in numbered:
            os.rename(
                os.path.join(self.dir, name), os.path.join(self.dir, name.replace(f".{number}", f".{number + 1}", 1))
            )

    def rotate(self, midway: Callable[[], None] = lambda: None) -> None:
        """One rotation; ``midway`` is called between its steps (the old file moved away or
        copied, the new one not yet there or not yet truncated)."""
        self.rotations += 1
        if not os.path.exists(self.path):
            return
        target = {
            "numeric": f"{BASE}.1",
            "numeric-gz": f"{BASE}.1",
            "copytruncate": f"{BASE}.1",
            "date": f"{BASE}-{20240101 + self.rotations}",
            "dateext": f"alert_fast-{20240101 + self.rotations}.txt",
            "seconds": f"{BASE}.{1733300000 + self.rotations}",
        }[self.scheme]
        if self.scheme in ("numeric", "numeric-gz", "copytruncate"):
            self._shift_numeric()
        if self.scheme == "copytruncate":
            shutil.copyfile(self.path, os.path.join(self.dir, target))
            midway()
            os.truncate(self.path, 0)
        else:
            os.rename(self.path, os.path.join(self.dir, target))
            midway()
            open(self.path, "ab").close()  # logrotate's `create`, Snort 3's reopen
        if self.scheme == "numeric-gz" and os.path.exists(os.path.join(self.dir, f"{BASE}.2")):
            self.compress_file(f"{BASE}.2")  # logrotate's `compress` + `delaycompress`

    def compress(self, pick: int) -> None:
        plain = sorted(n for n in self.rotated() if not parse_rotated_name(BASE, n).compression)
        if not plain:
            return
        self.compress_file(plain[pick % len(plain)])

    def compress_file(self, name: str) -> None:
        """gzip ``name`` as gzip(1) does: the .gz written, its time kept, the original removed."""
        name = os.path.join(self.dir, name)
        with open(name, "rb") as src, gzip.open(name + ".gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        shutil.copystat(name, name + ".gz")  # gzip keeps the modification time
        os.unlink(name)
