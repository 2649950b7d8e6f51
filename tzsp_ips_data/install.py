"""``snort-bridge files install``: put the shipped files where the README says, as dpkg treats conffiles.

A file the admin changed is never overwritten: the new version goes to ``FILE.new`` beside it. What
"changed" means needs a memory of what was installed: ``sha256sums`` (one ``HEX  PATH`` line per
file, the format of sha256sum) records the checksum of every file this command shipped. A file
whose checksum is still the recorded one is ours and is updated; any other content is the admin's.
The configuration file is created from the example only when absent, and then never touched.

``plan`` is pure (contents in, actions out); ``read_state`` and ``apply`` are the thin file edges.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tzsp_ips_data import CATALOGUE, CONFIG_TARGET, CORE, UNIT_BIN_DIR, Shipped, read_shipped

MANIFEST = "/var/lib/tzsp-ips-files/sha256sums"
CONFIG_MODE = 0o640  # the service user reads it through its group; secrets inline need 0600 (the loader says)

INSTALL, UPDATE, UNCHANGED, KEEP, NEW = "install", "update", "unchanged", "keep", "new"


@dataclass(frozen=True)
class Action:
    target: str  # absolute path on the system the files are for
    verdict: str  # INSTALL, UPDATE, UNCHANGED, KEEP (the admin's, no new version offered), NEW (FILE.new)
    content: bytes
    mode: int
    record: bool = True  # remember its checksum (never for the configuration file: it is the admin's)

    @property
    def write_to(self) -> str | None:
        if self.verdict in (INSTALL, UPDATE):
            return self.target
        return self.target + ".new" if self.verdict == NEW else None

    def describe(self, dry_run: bool = False) -> str:
        would = "would " if dry_run else ""
        text = {
            INSTALL: f"{would}install",
            UPDATE: f"{would}update",
            UNCHANGED: "unchanged",
            KEEP: "kept",
            NEW: f"{would}keep yours",
        }[self.verdict]
        line = f"{text:<17} {self.target}"
        if self.verdict == NEW:
            line += f" (changed here; the new version {'would go' if dry_run else 'is'} in {self.target}.new)"
        elif self.verdict == KEEP:
            line += " (exists; never overwritten)"
        return line


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def render(item: Shipped, content: bytes, bin_dir: str) -> bytes:
    """The file as installed: units start the commands from ``bin_dir`` (the installation's scripts)."""
    if not item.unit or bin_dir == UNIT_BIN_DIR:
        return content
    return content.replace(f"={UNIT_BIN_DIR}/".encode(), f"={bin_dir.rstrip('/')}/".encode())


def selected(groups: Iterable[str]) -> list[Shipped]:
    wanted = {CORE, *groups}
    return [item for item in CATALOGUE if item.group in wanted]


def decide(new: bytes, existing: bytes | None, recorded: str | None) -> str:
    """dpkg's rule for a conffile: install, update our own unchanged copy, or leave the admin's alone."""
    if existing is None:
        return INSTALL
    if existing == new:
        return UNCHANGED
    if recorded is not None and sha256(existing) == recorded:
        return UPDATE
    return NEW


def plan(
    items: Iterable[Shipped],
    shipped: Mapping[str, bytes],
    existing: Mapping[str, bytes | None],
    recorded: Mapping[str, str],
    bin_dir: str,
    config_example: bytes | None,
) -> list[Action]:
    """What to do with each file. ``shipped``: source -> content; ``existing``: target -> content on
    the system (None: absent); ``recorded``: target -> checksum from the manifest."""
    actions = []
    for item in items:
        content = render(item, shipped[item.source], bin_dir)
        verdict = decide(content, existing.get(item.target), recorded.get(item.target))
        actions.append(Action(item.target, verdict, content, item.mode))
    if config_example is not None:
        verdict = INSTALL if existing.get(CONFIG_TARGET) is None else KEEP
        actions.append(Action(CONFIG_TARGET, verdict, config_example, CONFIG_MODE, record=False))
    return actions


def parse_manifest(text: str) -> dict[str, str]:
    recorded = {}
    for line in text.splitlines():
        digest, _, path = line.partition("  ")
        if len(digest) == 64 and path.startswith("/"):
            recorded[path] = digest
    return recorded


def format_manifest(recorded: Mapping[str, str]) -> str:
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(recorded.items()))


# -- the edges: reading the system, writing into it ----------------------------------------------


def under(root: str, path: str) -> Path:
    return Path(root) / path.lstrip("/")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def read_state(items: Iterable[Shipped], root: str) -> tuple[dict[str, bytes], dict[str, bytes | None], dict[str, str]]:
    """(shipped contents, existing contents under ``root``, the manifest's checksums)."""
    items = list(items)
    shipped = {item.source: read_shipped(item.source) for item in items}
    targets = [item.target for item in items] + [CONFIG_TARGET]
    existing = {target: _read(under(root, target)) for target in targets}
    manifest = _read(under(root, MANIFEST))
    return shipped, existing, parse_manifest(manifest.decode() if manifest else "")


def _write_atomically(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def apply(actions: Iterable[Action], root: str, recorded: Mapping[str, str]) -> None:
    """Write what the plan says, then the manifest (the checksum of every shipped file now current)."""
    memory = dict(recorded)
    for action in actions:
        if action.write_to is not None:
            _write_atomically(under(root, action.write_to), action.content, action.mode)
        if action.record:
            memory[action.target] = sha256(action.content)
    _write_atomically(under(root, MANIFEST), format_manifest(memory).encode(), 0o644)
