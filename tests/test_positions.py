"""PositionStore and fingerprints: round trip, atomic replacement, tolerance of a bad file."""

from __future__ import annotations

import json
import logging
import os

import pytest

from bridge.follow.positions import (
    FINGERPRINT_BYTES,
    Position,
    PositionStore,
    fingerprint,
    fingerprint_length,
    fingerprint_matches,
)


def pos(path="/var/log/snort/alert_fast.txt", **kw):
    values = dict(device=2049, inode=1234, offset=300, line=3, fingerprint=fingerprint(b"x" * 300))
    values.update(kw)
    return Position(path=path, **values)


def test_fingerprint_covers_at_most_the_first_bytes():
    head = bytes(range(256)) * 3
    assert fingerprint(head) == fingerprint(head[:FINGERPRINT_BYTES])
    assert fingerprint_length(fingerprint(head)) == FINGERPRINT_BYTES
    assert fingerprint_length(fingerprint(b"abc")) == 3
    assert fingerprint(b"abc") != fingerprint(b"abd")


def test_fingerprint_matches_only_a_file_starting_with_the_same_bytes():
    fp = fingerprint(b"first line\n")
    assert fingerprint_matches(fp, b"first line\nsecond line\n")
    assert not fingerprint_matches(fp, b"first line")  # shorter: cannot be the same file
    assert not fingerprint_matches(fp, b"other line\nsecond line\n")
    assert not fingerprint_matches("md5:3:abc", b"abc")
    assert not fingerprint_matches("garbage", b"abc")
    assert fingerprint_matches(fingerprint(b""), b"anything")  # nothing read yet: any file


def test_store_round_trip(tmp_path):
    store = PositionStore(str(tmp_path / "state"))
    assert store.load() == {}
    a, b = pos("/logs/a"), pos("/logs/b", inode=99, offset=0, line=0, fingerprint=fingerprint(b""))
    store.set(a)
    store.set(b)
    assert store.dirty
    store.save()
    assert not store.dirty
    again = PositionStore(str(tmp_path / "state"))
    assert again.load() == {"/logs/a": a, "/logs/b": b}
    assert again.get("/logs/a") == a
    assert again.get("/logs/c") is None


def test_save_replaces_atomically_and_leaves_no_temporary(tmp_path):
    store = PositionStore(str(tmp_path))
    store.set(pos(offset=10))
    store.save()
    inode_before = os.stat(store.path).st_ino
    store.set(pos(offset=20))
    store.save()
    assert os.stat(store.path).st_ino != inode_before  # a new file renamed over the old one
    assert sorted(os.listdir(tmp_path)) == ["follow-positions.json"]
    assert json.loads(open(store.path).read())["positions"]["/var/log/snort/alert_fast.txt"]["offset"] == 20


def test_setting_the_same_position_does_not_dirty(tmp_path):
    store = PositionStore(str(tmp_path))
    store.set(pos())
    store.save()
    store.set(pos())
    assert not store.dirty


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00",
        b"[]",
        b'{"version": 2, "positions": {}}',
        b'{"version": 1, "positions": []}',
        b'{"version": 1, "positions": {"/a": {"path": "/a"}}}',
        b'{"version": 1, "positions": {"/a": {"path": "/a", "device": 1, "inode": -5, '
        b'"offset": 0, "line": 0, "fingerprint": "sha256:0:e3b0"}}}',
        b'{"version": 1, "positions": {"/a": {"path": "/b", "device": 1, "inode": 5, '
        b'"offset": 0, "line": 0, "fingerprint": "sha256:0:e3b0"}}}',
        b'{"version": 1, "positions": {"/a": {"path": "/a", "device": 1, "inode": 5, '
        b'"offset": "12", "line": 0, "fingerprint": "sha256:0:e3b0"}}}',
        b'{"version": 1, "positions": {"/a": {"path": "/a", "device": 1, "inode": 5, '
        b'"offset": 12, "line": 0, "fingerprint": "nope"}}}',
    ],
)
def test_a_bad_positions_file_is_logged_set_aside_and_starts_fresh(tmp_path, caplog, content):
    store = PositionStore(str(tmp_path))
    with open(store.path, "wb") as f:
        f.write(content)
    with caplog.at_level(logging.ERROR, logger="bridge.follow.positions"):
        assert store.load() == {}
    assert "unreadable" in caplog.text and store.path in caplog.text
    assert not os.path.exists(store.path)
    assert open(store.path + ".corrupt", "rb").read() == content
    store.set(pos())
    store.save()  # and it works again afterwards
    assert PositionStore(str(tmp_path)).load() == {pos().path: pos()}


def test_save_into_an_unusable_state_dir_raises_oserror(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = PositionStore(str(blocker / "state"))
    store.set(pos())
    with pytest.raises(OSError):
        store.save()
