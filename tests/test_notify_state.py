"""The `state` notification: a state file that cannot be written, written again, or found damaged. Pure."""

from __future__ import annotations

from bridge.config import DEFAULT_NOTIFY_EVENTS, NOTIFY_EVENTS
from bridge.notify.digest import Digester
from responder.feed import StateTrouble

T0 = 1_800_000_000.0


def told(events, offered, at):
    digester = Digester(events, 60.0, now=T0, host="ids1")
    for event in offered:
        digester.offer(event, event.at)
    return digester.due(at)


def test_state_is_a_kind_told_by_default():
    assert "state" in NOTIFY_EVENTS and "state" in DEFAULT_NOTIFY_EVENTS


def test_a_ledger_that_cannot_be_written_is_told_with_what_to_do():
    text = "the ledger /var/lib/tzsp-ips/responder.sqlite3 cannot be written (database or disk is full): ..."
    (message,) = told(["state"], [StateTrouble("ledger", False, T0, text)], T0 + 5)
    assert message.kind == "state" and message.severity == "failure"
    assert message.title == "tzsp-ips@ids1: STATE: the ledger CANNOT BE WRITTEN: blocking from memory"
    assert text in message.body and "df -h" in message.body and "/health answers 503" in message.body


def test_written_again_and_damaged_are_told_too_and_nothing_without_the_kind():
    back = StateTrouble("ledger", True, T0, "the ledger ... can be written again after 42s: ...")
    (message,) = told(["state"], [back], T0 + 5)
    assert message.severity == "success" and "written again" in message.title
    damaged = StateTrouble("ledger", False, T0, "the ledger ... is damaged ...; moved aside to ...", damaged=True)
    (message,) = told(["state"], [damaged], T0 + 5)
    assert "damaged: set aside and rebuilt from the routers" in message.title and message.severity == "warning"
    assert told(["block"], [damaged], T0 + 5) == []
