"""The follower's core without watchdog: splitting lines, reading a file, choosing where to resume.

Real files in tmp_path; rotations done with the same os calls logrotate makes.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.follow.lines import LineSplitter, RawLine, decode_line
from bridge.follow.positions import Position, fingerprint
from bridge.follow.readers import FileReader, plan_resume

# --- LineSplitter -------------------------------------------------------------------------------


def test_splitter_holds_a_partial_line_until_its_newline():
    s = LineSplitter()
    assert s.feed(b"one\ntw") == [RawLine(0, 4, b"one")]
    assert s.offset == 4 and s.read_to == 6 and s.has_partial
    [line] = s.feed(b"o\n")
    assert (line.offset, line.end, line.data) == (4, 8, b"two")
    assert not s.has_partial


def test_splitter_starts_at_a_given_offset():
    s = LineSplitter(offset=100)
    [a, b] = s.feed(b"x\nyz\n")
    assert (a.offset, a.end, b.offset, b.end) == (100, 102, 102, 105)


def test_splitter_skips_an_over_long_line_without_holding_it():
    s = LineSplitter(max_line_bytes=10)
    out = s.feed(b"short\n" + b"A" * 7)
    out += s.feed(b"B" * 50)  # now over the limit: dropped as it streams
    assert len(s._pending) <= 10
    out += s.feed(b"C" * 5 + b"\nafter\n")
    assert [(r.offset, r.end, r.data) for r in out] == [
        (0, 6, b"short"),
        (6, 6 + 62 + 1, None),
        (69, 75, b"after"),
    ]


def test_splitter_line_of_exactly_the_limit_is_kept():
    s = LineSplitter(max_line_bytes=5)
    assert [r.data for r in s.feed(b"12345\n123456\n")] == [b"12345", None]


def test_take_partial_returns_the_unterminated_rest_once():
    s = LineSplitter()
    s.feed(b"a\nlast")
    raw = s.take_partial()
    assert (raw.offset, raw.end, raw.data) == (2, 6, b"last")
    assert s.take_partial() is None


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
    tail=st.binary(max_size=10).map(lambda b: b.replace(b"\n", b"")),
)
def test_splitting_does_not_depend_on_how_the_bytes_arrive(lines, cuts, tail):
    stream = b"".join(line + b"\n" for line in lines) + tail
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    s = LineSplitter(max_line_bytes=30)
    out = []
    for a, b in itertools.pairwise(points):
        out += s.feed(stream[a:b])
    expected, offset = [], 0
    for line in lines:
        expected.append((offset, offset + len(line) + 1, line if len(line) <= 30 else None))
        offset += len(line) + 1
    assert [(r.offset, r.end, r.data) for r in out] == expected
    assert s.offset == offset and s.read_to == len(stream)


def test_decode_line_replaces_bad_bytes_and_drops_cr():
    assert decode_line(b"caf\xc3\xa9\r") == "café"
    assert decode_line(b"a\xffb\x00c") == "a\ufffdb\x00c"


# --- FileReader ---------------------------------------------------------------------------------


def write(path, data: bytes, mode="ab"):
    with open(path, mode) as f:
        f.write(data)


def test_reader_reads_new_complete_lines_with_numbers_and_positions(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"first\nsecond\nthi")
    with FileReader.open(path) as r:
        lines = r.read_available()
        assert [(ln.number, ln.offset, ln.text) for ln in lines] == [(1, 0, "first"), (2, 6, "second")]
        assert r.at_eof
        st = os.stat(path)
        assert lines[1].position == Position(path, st.st_dev, st.st_ino, 13, 2, fingerprint(b"first\nsecond\n"))
        assert r.read_available() == []
        write(path, b"rd\n")
        [third] = r.read_available()
        assert (third.number, third.offset, third.text) == (3, 13, "third")
        assert third.position.offset == 19  # just after "third\n"


def test_reader_fingerprint_stops_growing_after_the_first_bytes(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"".join(b"line %03d with some padding text\n" % i for i in range(40)))
    with FileReader.open(path) as r:
        lines = r.read_available()
        with open(path, "rb") as f:
            head = f.read(256)
        assert lines[-1].position.fingerprint == fingerprint(head)
        assert lines[0].position.fingerprint == fingerprint(head[: lines[0].position.offset])


def test_reader_resumes_at_an_offset(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"a\nb\nc\n")
    with FileReader.open(path, offset=2, line=1) as r:
        assert [(ln.number, ln.text) for ln in r.read_available()] == [(2, "b"), (3, "c")]


def test_reader_notices_truncation_and_rewrite(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"one\ntwo\n")
    with FileReader.open(path) as r:
        r.read_available()
        assert not r.truncated() and not r.rewritten()
        os.truncate(path, 0)
        assert r.truncated()
        write(path, b"ONE\ntwo\nthree\n")  # longer than before, but other content
        assert not r.truncated() and r.rewritten()
        r.restart()
        assert [ln.text for ln in r.read_available()] == ["ONE", "two", "three"]


def test_reader_keeps_reading_a_renamed_then_deleted_file(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"a\n")
    with FileReader.open(path) as r:
        r.read_available()
        with open(path, "ab") as writer:
            os.rename(path, path + ".1")
            writer.write(b"b\n")
            writer.flush()
            os.unlink(path + ".1")
            writer.write(b"c")
            writer.flush()
            assert [ln.text for ln in r.read_available()] == ["b"]
        assert [ln.text for ln in r.finish()] == ["c"]  # the file is done: its last bytes too


def test_reader_skips_an_over_long_line_and_logs_file_and_offset(tmp_path, caplog):
    path = str(tmp_path / "alert")
    write(path, b"ok\n" + b"x" * 5000 + b"\nnext\n")
    with FileReader.open(path, max_line_bytes=1000) as r:
        with caplog.at_level(logging.WARNING, logger="bridge.follow"):
            lines = r.read_available(budget=1024)  # a small budget: reads in several passes
            while not r.at_eof:
                lines += r.read_available(budget=1024)
        assert [(ln.number, ln.text) for ln in lines] == [(1, "ok"), (3, "next")]
        assert f"skipped line 2 of {path} at offset 3" in caplog.text


# --- plan_resume --------------------------------------------------------------------------------


def where(plan):
    """(file, offset, line) of the plan's first step."""
    step = plan.steps[0]
    return (step.file.path, step.offset, step.line)


def saved_after(path, lines_read: int) -> Position:
    """The position a reader reaches after ``lines_read`` lines of ``path``."""
    with FileReader.open(path) as r:
        return r.read_available()[lines_read - 1].position


def test_resume_new_file_from_start_or_end(tmp_path):
    path = str(tmp_path / "alert")
    assert plan_resume(path, None).steps == ()
    write(path, b"a\n")
    plan = plan_resume(path, None)
    assert where(plan) == (path, 0, 0)
    assert plan_resume(path, None, start_at_end=True).steps[0].offset == -1  # "at the end", found on open


def test_resume_same_file_at_saved_offset(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"a\nb\n")
    saved = saved_after(path, 1)
    write(path, b"c\n")
    plan = plan_resume(path, saved)
    assert where(plan) == (path, 2, 1)


def test_resume_finds_the_rotated_file_by_inode_under_any_name(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"a\nb\n")
    saved = saved_after(path, 1)
    os.rename(path, str(tmp_path / "alert-20240101"))
    write(path, b"new\n")
    write(str(tmp_path / "unrelated"), b"zzz\n")
    plan = plan_resume(path, saved)
    assert where(plan) == (str(tmp_path / "alert-20240101"), 2, 1)


def test_resume_rotated_and_not_recreated_yet(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"a\nb\n")
    saved = saved_after(path, 2)
    os.rename(path, path + ".1")
    plan = plan_resume(path, saved)
    assert where(plan)[:2] == (path + ".1", 4)


def test_resume_old_file_gone(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"a\nb\n")
    saved = saved_after(path, 2)
    keep = open(path, "rb")  # holds the inode, so the new file cannot get the same number
    try:
        os.unlink(path)
        write(path, b"fresh\n")
        plan = plan_resume(path, saved)
    finally:
        keep.close()
    assert where(plan) == (path, 0, 0)
    os.unlink(path)
    assert plan_resume(path, saved).steps == ()


def test_resume_same_inode_other_content_starts_over(tmp_path):
    """An inode number reused by another file: the fingerprint tells them apart."""
    path = str(tmp_path / "alert")
    write(path, b"completely different content\nline two\n")
    st = os.stat(path)
    saved = Position(path, st.st_dev, st.st_ino, 12, 1, fingerprint(b"old content\n"))
    plan = plan_resume(path, saved)
    assert where(plan) == (path, 0, 0)


def test_resume_after_truncation_while_stopped(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"aaa\nbbb\n")
    saved = saved_after(path, 2)
    os.truncate(path, 0)
    write(path, b"c\n")
    plan = plan_resume(path, saved)
    assert where(plan)[:2] == (path, 0)


def test_resume_after_copytruncate_while_stopped_finishes_the_copy(tmp_path):
    path = str(tmp_path / "alert")
    write(path, b"aaa\nbbb\n")
    saved = saved_after(path, 1)
    shutil.copyfile(path, path + ".1")
    os.truncate(path, 0)
    write(path, b"new\n")
    plan = plan_resume(path, saved)
    assert where(plan) == (path + ".1", 4, 1)
