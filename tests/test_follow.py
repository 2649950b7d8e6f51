"""The Follower end to end: a writer in the test does real file operations (append, rename,
copytruncate, unlink, restart) while the follower runs with watchdog.

Reading happens only inside lines()/read_ready(), so a file operation done between two calls
is seen as a whole; ``read_ready() == []`` then proves nothing extra was delivered.
In most tests the safety poll is set to 60 s; the tests near the end check what wakes a
reader that is blocked waiting (file events, the safety poll, the polling observer).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time

import pytest

from bridge.follow.follower import Follower

EVENTS_ONLY = 60.0  # safety poll so slow it never fires during a test


def append(path, data) -> None:
    with open(path, "ab") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def take(follower, n, within=5.0, commit=True):
    """The next ``n`` lines (or fewer once ``within`` seconds pass), committing each."""
    got = []
    deadline = time.monotonic() + within
    while len(got) < n and time.monotonic() < deadline:
        for line in follower.lines(timeout=0.2):
            got.append(line)
            if commit:
                follower.commit(line)
            if len(got) == n:
                break
    return got


def texts(lines):
    return [line.text for line in lines]


@pytest.fixture
def logdir(tmp_path):
    d = tmp_path / "log"
    d.mkdir()
    return d


@pytest.fixture
def alert(logdir):
    """An empty alert file, as Snort leaves it at start."""
    path = logdir / "alert"
    path.write_text("")
    return path


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "state")


def follower(paths, state, **kw):
    kw.setdefault("poll_interval", EVENTS_ONLY)
    return Follower([str(p) for p in paths], state, **kw)


def test_appended_lines_arrive_in_order_with_numbers(logdir, state):
    path = logdir / "alert_fast.txt"
    path.write_text("")
    with follower([path], state) as f:
        append(path, "a1\na2\na3\n")
        got = take(f, 3)
        assert [(ln.path, ln.number, ln.offset, ln.text) for ln in got] == [
            (str(path), 1, 0, "a1"),
            (str(path), 2, 3, "a2"),
            (str(path), 3, 6, "a3"),
        ]
        append(path, "a4\n")
        append(path, "a5\n")
        assert texts(take(f, 2)) == ["a4", "a5"]
        assert f.read_ready() == []


def test_a_partial_line_waits_for_its_newline(alert, state):
    with follower([alert], state) as f:
        append(alert, "complete\npart")
        assert texts(take(f, 1)) == ["complete"]
        assert list(f.lines(timeout=0.3)) == []  # "part" is not a line yet
        append(alert, "ial\n")
        assert texts(take(f, 1)) == ["partial"]
        assert f.read_ready() == []


def test_logrotate_rename_and_create_finishes_the_old_file_first(alert, state):
    with follower([alert], state) as f:
        with open(alert, "ab", buffering=0) as writer:
            writer.write(b"old1\nold2\n")
            assert texts(take(f, 2)) == ["old1", "old2"]
            writer.write(b"old3\n")  # not read yet
            os.rename(alert, str(alert) + ".1")
            alert.write_text("")  # logrotate "create": new, empty
            writer.write(b"old4\n")  # the writer has not reopened yet
            assert texts(take(f, 2)) == ["old3", "old4"]
            writer.write(b"old5\n")
        with open(alert, "ab", buffering=0) as writer:  # reopened after the signal
            writer.write(b"new1\nnew2\n")
        got = take(f, 3)
        assert [(ln.number, ln.text) for ln in got] == [(5, "old5"), (1, "new1"), (2, "new2")]
        append(alert, "new3\n")
        assert texts(take(f, 1)) == ["new3"]
        assert f.read_ready() == []


def test_copytruncate_reads_the_unread_tail_from_the_copy_then_starts_over(alert, state):
    with follower([alert], state) as f:
        append(alert, "l1\nl2\n")
        assert texts(take(f, 2)) == ["l1", "l2"]
        append(alert, "l3\n")  # written before the copy, not yet read
        shutil.copyfile(alert, str(alert) + ".1")
        os.truncate(alert, 0)
        append(alert, "n1\n")
        got = take(f, 2)
        assert [(ln.number, ln.text) for ln in got] == [(3, "l3"), (1, "n1")]
        append(alert, "n2\n")
        assert texts(take(f, 1)) == ["n2"]
        assert f.read_ready() == []


def test_truncated_without_a_copy_starts_over(alert, state):
    with follower([alert], state) as f:
        append(alert, "a much longer first line\n")
        assert texts(take(f, 1)) == ["a much longer first line"]
        with open(alert, "wb") as w:  # "> alert" then new content
            w.write(b"x\n")
        assert texts(take(f, 1)) == ["x"]
        assert f.read_ready() == []


def test_delete_and_recreate(alert, state):
    with follower([alert], state) as f:
        with open(alert, "ab", buffering=0) as old:
            old.write(b"d1\n")
            assert texts(take(f, 1)) == ["d1"]
            os.unlink(alert)
            old.write(b"d2\n")  # still written through the open descriptor
            assert texts(take(f, 1)) == ["d2"]
            alert.write_text("r1\n")
        got = take(f, 1)
        assert [(ln.number, ln.text) for ln in got] == [(1, "r1")]
        assert f.read_ready() == []


def test_a_file_that_appears_after_start_is_read_from_its_beginning(logdir, state):
    path = logdir / "later"
    with follower([path], state, start_at_end_for_new_files=True) as f:
        assert list(f.lines(timeout=0.2)) == []
        path.write_text("p1\np2\n")
        assert texts(take(f, 2)) == ["p1", "p2"]
        assert f.read_ready() == []


def test_a_missing_directory_is_an_error_message_then_followed_when_it_appears(tmp_path, state, caplog):
    path = tmp_path / "not" / "yet" / "alert"
    with caplog.at_level(logging.ERROR, logger="bridge.follow"):
        f = follower([path], state, poll_interval=0.1)
        f.start()
    try:
        assert "does not exist" in caplog.text and str(path.parent) in caplog.text
        assert list(f.lines(timeout=0.3)) == []
        path.parent.mkdir(parents=True)
        path.write_text("first\n")
        assert texts(take(f, 1)) == ["first"]
        deadline = time.monotonic() + 5  # once watched, inotify wakes the reader
        while f._watches._scheduled[str(path.parent)] is None and time.monotonic() < deadline:
            list(f.lines(timeout=0.1))
        append(path, "second\n")
        assert texts(take(f, 1)) == ["second"]
        assert f.read_ready() == []
    finally:
        f.stop()


def test_two_files_at_once(logdir, state):
    a, b = logdir / "a.log", logdir / "b.log"
    a.write_text("")
    with follower([a, b], state) as f:
        for i in range(5):
            append(a, f"a{i}\n")
            if i == 2:
                b.write_text("")
            if i >= 2:
                append(b, f"b{i}\n")
        got = take(f, 8)
        assert texts(ln for ln in got if ln.path == str(a)) == [f"a{i}" for i in range(5)]
        assert texts(ln for ln in got if ln.path == str(b)) == ["b2", "b3", "b4"]
        assert f.read_ready() == []
    positions = json.loads(open(os.path.join(state, "follow-positions.json")).read())["positions"]
    assert positions[str(a)]["line"] == 5 and positions[str(b)]["line"] == 3


def test_restart_resumes_exactly_after_the_last_committed_line(alert, state):
    with follower([alert], state) as f:
        append(alert, "1\n2\n3\n")
        got = take(f, 3, commit=False)
        f.commit(got[0])
        f.commit(got[1])  # "3" delivered but never handled
    append(alert, "4\n5\n")  # written while stopped
    with follower([alert], state) as f:
        got = take(f, 3)
        assert [(ln.number, ln.text) for ln in got] == [(3, "3"), (4, "4"), (5, "5")]
        assert f.read_ready() == []
    with follower([alert], state) as f:
        assert list(f.lines(timeout=0.3)) == []


def test_rotation_while_stopped_finishes_the_old_file_then_reads_the_new(logdir, alert, state):
    with follower([alert], state) as f:
        append(alert, "o1\no2\n")
        assert texts(take(f, 2)) == ["o1", "o2"]
    append(alert, "o3\n")
    os.rename(alert, logdir / "alert-20240102")
    alert.write_text("n1\nn2\n")
    with follower([alert], state) as f:
        got = take(f, 3)
        assert [(ln.number, ln.text) for ln in got] == [(3, "o3"), (1, "n1"), (2, "n2")]
        assert f.read_ready() == []
    with follower([alert], state) as f:  # and again: nothing repeated
        append(alert, "n3\n")
        assert [(ln.number, ln.text) for ln in take(f, 1)] == [(3, "n3")]
        assert f.read_ready() == []


def test_copytruncate_while_stopped(alert, state):
    with follower([alert], state) as f:
        append(alert, "c1\n")
        assert texts(take(f, 1)) == ["c1"]
    append(alert, "c2\n")
    shutil.copyfile(alert, str(alert) + ".1")
    os.truncate(alert, 0)
    append(alert, "t1\n")
    with follower([alert], state) as f:
        assert texts(take(f, 2)) == ["c2", "t1"]
        assert f.read_ready() == []


def test_a_reused_inode_with_other_content_is_read_from_the_start(alert, state):
    with follower([alert], state) as f:
        append(alert, "original line one\noriginal line two\n")
        assert len(take(f, 2)) == 2
    os.unlink(alert)
    alert.write_text("replacement\n")  # may or may not get the same inode number; force it:
    positions_file = os.path.join(state, "follow-positions.json")
    doc = json.loads(open(positions_file).read())
    entry = doc["positions"][str(alert)]
    st = os.stat(alert)
    entry["device"], entry["inode"] = st.st_dev, st.st_ino
    with open(positions_file, "w") as w:
        json.dump(doc, w)
    with follower([alert], state) as f:
        got = take(f, 1)
        assert [(ln.number, ln.text) for ln in got] == [(1, "replacement")]
        assert f.read_ready() == []


def test_start_at_end_skips_old_content_but_never_what_is_written_while_stopped(logdir, state):
    path = logdir / "alert"
    path.write_text("history1\nhistory2\npart")
    with follower([path], state, start_at_end_for_new_files=True) as f:
        assert list(f.lines(timeout=0.2)) == []
        append(path, "ial\n")
    append(path, "while stopped\n")  # nothing was committed, yet the start is remembered
    with follower([path], state, start_at_end_for_new_files=True) as f:
        got = take(f, 2)
        assert [(ln.number, ln.text) for ln in got] == [(3, "partial"), (4, "while stopped")]


def test_polling_fallback_without_inotify(alert, state):
    with follower([alert], state, use_inotify=False, poll_interval=0.05) as f:
        assert all(type(o).__name__ == "PollingObserver" for o in f._watches._observers)
        append(alert, "p1\np2\n")
        assert texts(take(f, 2)) == ["p1", "p2"]
        os.rename(alert, str(alert) + ".1")
        append(str(alert) + ".1", "p3\n")
        alert.write_text("q1\n")
        assert texts(take(f, 2)) == ["p3", "q1"]
        assert f.read_ready() == []


def test_hostile_content(alert, state, caplog):
    with follower([alert], state) as f, caplog.at_level(logging.WARNING, logger="bridge.follow"):
        huge = b"1.2.3.4 " + b"A" * (1 << 20) + b" 10.0.0.12\n"  # over the 1 MiB limit
        big_ok = b"B" * 1_000_000 + b"\n"  # a 1 MB line still under it
        append(alert, b"before\n" + huge + big_ok + b"nul\x00byte\n" + b"bad \xff\xfe utf8\r\nafter\n")
        got = take(f, 5)
        assert [(ln.number, ln.text) for ln in got] == [
            (1, "before"),
            (3, "B" * 1_000_000),
            (4, "nul\x00byte"),
            (5, "bad \ufffd\ufffd utf8"),
            (6, "after"),
        ]
        assert f"skipped line 2 of {alert} at offset 7" in caplog.text
        assert f.read_ready() == []


def test_lines_written_in_many_small_pieces(alert, state):
    with follower([alert], state) as f:
        with open(alert, "ab", buffering=0) as w:
            for i in range(200):
                w.write(b"line-%d" % i)
                w.write(b"\n")
        got = take(f, 200)
        assert [(ln.number, ln.text) for ln in got] == [(i + 1, f"line-{i}") for i in range(200)]


def test_stop_from_another_thread_ends_lines(alert, state):
    import threading

    f = follower([alert], state).start()
    timer = threading.Timer(0.2, f.stop)
    timer.start()
    started = time.monotonic()
    assert list(f.lines()) == []  # no timeout: only stop() ends it
    assert time.monotonic() - started < 10
    timer.join()


def test_a_line_after_a_skipped_over_long_line_needs_no_further_event(alert, state):
    """Skipping 3 MiB yields no line for several read passes; the reader must keep going."""
    with follower([alert], state) as f:
        append(alert, b"Z" * (3 << 20) + b"\nafter\n")
        got = f.read_ready()  # one call, no waiting: it reads on until it has a line
        assert [(ln.number, ln.text) for ln in got] == [(2, "after")]


def test_inotify_watch_refused_falls_back_to_polling_that_directory(logdir, state, monkeypatch, caplog):
    import errno

    from watchdog.observers import Observer

    def refuse(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(Observer, "schedule", refuse)
    path = logdir / "alert"
    path.write_text("")
    with caplog.at_level(logging.WARNING, logger="bridge.follow"):
        f = follower([path], state, poll_interval=0.1).start()
    try:
        assert "polling it" in caplog.text
        assert type(f._watches._scheduled[str(logdir)][1]).__name__ == "PollingObserver"
        append(path, "x1\n")
        assert texts(take(f, 1)) == ["x1"]
    finally:
        f.stop()


def first_line_while_waiting(f, action, idle_timeout=20.0):
    """Run ``action`` from another thread while one lines() call is blocked waiting; return the
    first line and how long it took. Without a wake-up it would only come after idle_timeout."""
    import threading

    timer = threading.Timer(0.1, action)
    started = time.monotonic()
    timer.start()
    try:
        line = next(iter(f.lines(timeout=idle_timeout)), None)
    finally:
        timer.join()
    return line, time.monotonic() - started


def test_file_events_wake_a_waiting_reader(alert, state):
    with follower([alert], state) as f:  # safety poll 60 s: only an event can wake it
        line, took = first_line_while_waiting(f, lambda: append(alert, "woken\n"))
        assert line is not None and line.text == "woken"
        assert took < 10  # not the 20 s idle timeout


def test_the_safety_poll_catches_what_an_event_missed(alert, state, monkeypatch):
    from bridge.follow import watches

    monkeypatch.setattr(watches._Waker, "dispatch", lambda self, event: None)
    with follower([alert], state, poll_interval=0.2) as f:
        line, took = first_line_while_waiting(f, lambda: append(alert, "missed by events\n"))
        assert line is not None and line.text == "missed by events"
        assert took < 10


def test_the_polling_observer_wakes_a_waiting_reader(alert, state):
    with follower([alert], state, use_inotify=False, poll_interval=0.2) as f:
        line, took = first_line_while_waiting(f, lambda: append(alert, "polled\n"))
        assert line is not None and line.text == "polled"
        assert took < 10


def test_committed_positions_are_on_disk_once_the_reader_runs_idle(alert, state):
    """As after a crash: a second follower, the first never stopped, resumes after the commit."""
    first = follower([alert], state, save_interval=3600).start()
    try:
        append(alert, "k1\nk2\n")
        assert texts(take(first, 2)) == ["k1", "k2"]
        assert list(first.lines(timeout=0.1)) == []  # runs out of lines: saves
        append(alert, "k3\n")
        with follower([alert], state) as second:
            assert [(ln.number, ln.text) for ln in take(second, 1)] == [(3, "k3")]
            assert second.read_ready() == []
    finally:
        first.stop()


def test_save_interval_zero_saves_every_commit(alert, state):
    f = follower([alert], state, save_interval=0).start()
    try:
        append(alert, "s1\ns2\n")
        got = take(f, 2, commit=False)
        f.commit(got[0])
        doc = json.loads(open(os.path.join(state, "follow-positions.json")).read())
        assert doc["positions"][str(alert)]["line"] == 1
    finally:
        f.stop()


def test_a_glob_follows_every_match_and_files_that_appear_later_from_their_start(logdir, state):
    (logdir / "s1").mkdir()
    (logdir / "s2").mkdir()
    first = logdir / "s1" / "alert_fast.txt"
    append(first, "one\n")
    append(str(first) + ".1", "rotated: read as part of its chain, not on its own\n")
    with Follower([str(logdir / "*" / "alert_fast.txt")], str(state), poll_interval=0.1) as follower:
        got = take(follower, 1)
        assert [(line.path, line.text) for line in got] == [(str(first), "one")]
        later = logdir / "s2" / "alert_fast.txt"
        append(later, "two\nthree\n")  # appears after start: read from its start, no restart
        append(first, "four\n")
        got = take(follower, 3)
        assert sorted((line.path, line.text) for line in got) == [
            (str(first), "four"),
            (str(later), "three"),
            (str(later), "two"),
        ]
        assert follower.read_ready() == []
    with Follower([str(logdir / "*" / "alert_fast.txt")], str(state), poll_interval=0.1) as follower:
        append(logdir / "s2" / "alert_fast.txt", "five\n")
        assert texts(take(follower, 1)) == ["five"]  # both positions were kept


def test_paths_can_be_added_while_following(logdir, state):
    a, b = logdir / "a.txt", logdir / "b.txt"
    append(a, "a1\n")
    append(b, "b1\n")
    with Follower([str(a)], str(state), poll_interval=EVENTS_ONLY) as follower:
        assert texts(take(follower, 1)) == ["a1"]
        assert follower.add_paths([str(a), str(b)]) == [str(b)]
        append(b, "b2\n")
        assert texts(take(follower, 2)) == ["b1", "b2"]


def test_a_glob_that_also_matches_rotated_files_follows_only_the_current_ones(logdir, state):
    for name in (
        "alert_fast.txt",
        "alert_fast.txt.1",
        "alert_fast.txt.2.gz",
        "alert_json.txt",
        "alert_json.txt.1733300000",
    ):
        append(logdir / name, f"{name}\n")
    with Follower([str(logdir / "alert_*")], str(state), poll_interval=EVENTS_ONLY) as follower:
        assert sorted(follower.paths) == [str(logdir / "alert_fast.txt"), str(logdir / "alert_json.txt")]
        assert sorted(texts(take(follower, 2))) == ["alert_fast.txt", "alert_json.txt"]


def test_numeric_rotations_at_full_speed_while_reading_lose_and_repeat_nothing(logdir, state):
    """A writer thread rotating logrotate-style (renaming every file in turn) as fast as it can,
    while the follower reads: files moving between a plan and their opening, listings taken in
    the middle of the renames."""
    import threading

    path = str(logdir / "alert_fast.txt")
    open(path, "w").close()
    total, every = 6000, 300

    def writer():
        handle = open(path, "a")
        for i in range(total):
            if i and i % every == 0:
                handle.close()
                numbers = sorted(
                    (int(n.rsplit(".", 1)[1]) for n in os.listdir(logdir) if n.startswith("alert_fast.txt.")),
                    reverse=True,
                )
                for number in numbers:
                    os.rename(f"{path}.{number}", f"{path}.{number + 1}")
                os.rename(path, f"{path}.1")
                handle = open(path, "a")
            handle.write(f"line {i}\n")
            handle.flush()
        handle.close()

    with Follower([path], str(state), poll_interval=0.2) as follower:
        thread = threading.Thread(target=writer)
        thread.start()
        got = take(follower, total, within=30)
        thread.join()
        assert texts(got) == [f"line {i}" for i in range(total)]
        assert follower.read_ready() == []
