"""provision --check's core: what a router printed versus the desired items (pure, no router)."""

from __future__ import annotations

import ipaddress

import pytest

from responder.provision import ProvisionPlan
from responder.provision.drift import (
    DIFFERENT,
    DISABLED,
    DUPLICATE,
    MISPLACED,
    MISSING,
    OK,
    UNWANTED,
    changes,
    check,
    read_commands,
)
from responder.provision.items import desired_items
from responder.routeros.printed import parse_properties, parse_terse

HOST = ipaddress.ip_address("198.51.100.5")


def plan(**overrides):
    base = dict(router="core1", router_host="192.0.2.1", this_host=HOST, syslog_port=5514, flavour="v7")
    base.update(overrides)
    return ProvisionPlan(**base)


def terse_line(index, fields, flags=" ", v6=False):
    """One line as RouterOS prints ``print terse``: values unquoted even with spaces."""
    body = " ".join(f"{name}={value}" for name, value in fields)
    return f"{index:>3} {flags} {body} " if v6 else f"{index:>2} {flags} {body}"


def provisioned(items, extra=None, v6=False):
    """The print output of a router holding exactly ``items`` (plus ``extra`` rows first, per menu)."""
    tables = {}
    for menu, rows in (extra or {}).items():
        tables.setdefault(menu, []).extend(rows)
    for item in items:
        if item.absent:
            continue
        if item.singleton:
            tables.setdefault(item.menu, []).append(item.props)
        else:
            tables.setdefault(item.menu, []).append(item.key + item.props + (("log", "no"),))
    printed = {}
    for menu, command in read_commands(items):
        rows = tables.get(menu, [])
        if command.endswith(" print"):
            text = "\r\n".join(f"{name:>20}: {value}" for fields in rows for name, value in fields)
            printed[menu] = [parse_properties(text)]
        else:
            text = "\r\n".join(terse_line(i, fields, v6=v6) for i, fields in enumerate(rows))
            printed[menu] = parse_terse(text)
    return printed


def states(findings):
    return {f.item.what: f.state for f in findings if f.state != OK}


def test_a_router_as_provisioned_has_no_drift_v6_and_v7():
    for v6 in (False, True):
        for variant in (plan(), plan(tzsp="sniffer", block_in="raw"), plan(flavour="v6")):
            items = desired_items(variant)
            findings = check(items, provisioned(items, v6=v6))
            assert states(findings) == {}, [f.line for f in findings if f.drift]
            assert len(findings) == len(items)


def test_drop_rules_pushed_below_an_accept_are_named_with_the_fix():
    items = desired_items(plan())
    accept = (("chain", "input"), ("action", "accept"), ("connection-state", "established,related"))
    printed = provisioned(items, extra={"/ip firewall filter": [accept]})
    findings = [f for f in check(items, printed) if f.drift]
    [finding] = findings  # only the input drop: forward has no accept above it, and the log rules may sit anywhere
    assert (
        finding.state == MISPLACED and finding.item.what == "IPv4 filter input: drop sources in address list blacklist"
    )
    assert "below the accept rule #0 of chain input" in finding.line
    assert finding.fix == (
        '/ip firewall filter move [/ip firewall filter find where comment="tzsp-ips: drop input sources in the address list"] '
        "destination=[:pick [/ip firewall filter find] 0]"
    )


def test_an_accept_below_the_drops_is_fine():
    items = desired_items(plan())
    printed = provisioned(items)
    rows = list(printed["/ip firewall filter"])
    accept = parse_terse(terse_line(len(rows), (("chain", "input"), ("action", "accept"))))
    printed = dict(printed, **{"/ip firewall filter": rows + accept})
    assert states(check(items, printed)) == {}


def test_mangle_target_changed_and_list_renamed_are_different_with_a_set():
    items = desired_items(plan())
    moved = desired_items(plan(this_host=ipaddress.ip_address("198.51.100.99"), list_name="oldlist"))
    findings = {f.item.what: f for f in check(items, provisioned(moved)) if f.drift}
    mangle = findings["TZSP streaming by mangle sniff-tzsp"]
    assert mangle.state == DIFFERENT
    assert "sniff-target is 198.51.100.99, expected 198.51.100.5" in mangle.detail
    assert mangle.fix == (
        '/ip firewall mangle set [/ip firewall mangle find where comment="tzsp-ips: to tzspd"] sniff-target=198.51.100.5'
    )
    drop = findings["IPv6 filter forward: drop destinations in address list blacklist"]
    assert drop.state == DIFFERENT and "dst-address-list is oldlist, expected blacklist" in drop.detail
    assert drop.fix.endswith("dst-address-list=blacklist")
    assert findings["remote log action tzspips (to the port-scan detector)"].state == DIFFERENT
    assert findings["user ips"].state == DIFFERENT  # its address= follows this host


def test_sniffer_target_changed():
    items = desired_items(plan(tzsp="sniffer"))
    elsewhere = desired_items(plan(tzsp="sniffer", tzsp_port=37099))
    [finding] = [f for f in check(items, provisioned(elsewhere)) if f.drift]
    assert finding.state == DIFFERENT and finding.item.menu == "/tool sniffer"
    assert "streaming-server is 198.51.100.5:37099, expected 198.51.100.5:37008" in finding.detail
    assert finding.fix == "/tool sniffer set streaming-server=198.51.100.5:37008"


def test_log_action_gone_and_rule_missing():
    items = desired_items(plan())
    kept = [i for i in items if i.menu != "/system logging action"]
    printed = provisioned(kept)
    printed["/system logging action"] = parse_terse(terse_line(0, (("name", "memory"), ("target", "memory")), "*"))
    [finding] = [f for f in check(items, printed) if f.drift]
    assert finding.state == MISSING
    assert finding.fix == "/system logging action add name=tzspips target=remote remote=198.51.100.5 remote-port=5514"


def test_duplicates_disabled_and_leftovers():
    items = desired_items(plan(block_in="raw"))
    mangle = next(i for i in items if i.menu == "/ip firewall mangle")
    filter_drop = next(i for i in desired_items(plan()) if i.menu == "/ip firewall filter" and i.top_of == "input")
    printed = provisioned(items, extra={"/ip firewall mangle": [mangle.key + mangle.props]})
    printed["/ip firewall filter"] = list(printed["/ip firewall filter"]) + parse_terse(
        terse_line(9, filter_drop.key + filter_drop.props)
    )
    log_rule = next(i for i in items if i.menu == "/ipv6 firewall filter" and "new connections" in i.what)
    rows = printed["/ipv6 firewall filter"]
    printed["/ipv6 firewall filter"] = [
        parse_terse(terse_line(r.index, tuple(r.fields.items()), "X"))[0]
        if r.get("comment") == log_rule.key[0][1]
        else r
        for r in rows
    ]
    found = states(check(items, printed))
    assert found == {
        "TZSP streaming by mangle sniff-tzsp": DUPLICATE,
        "IPv4 filter input: drop sources in address list blacklist": UNWANTED,  # block_in moved to raw
        "IPv6 filter input: log new connections": DISABLED,
    }


def test_changes_of_a_run_and_none_on_the_second():
    items = desired_items(plan())
    empty = provisioned([])
    empty = {menu: [] for menu, _ in read_commands(items)}
    done = provisioned(items)
    lines = changes(items, empty, done)
    assert "added IPv4 filter input: drop sources in address list blacklist" in lines
    assert "added TZSP streaming by mangle sniff-tzsp" in lines
    assert changes(items, done, done) == []
    moved = provisioned(desired_items(plan(list_name="old")))
    assert "changed IPv4 filter input: drop sources in address list blacklist: src-address-list old -> blacklist" in (
        changes(items, moved, done)
    )


def test_terse_parser_reads_both_flavours_and_quoted_values():
    v7 = parse_terse(
        "Flags: X - DISABLED\r\n"
        ' 0 X comment=tzsp-ips: log new connections (port-scan detector) chain=input action=log log-prefix="tzsp-ips"\r\n'
        " 1 * name=memory target=memory"
    )
    assert v7[0].disabled and v7[0].get("comment") == "tzsp-ips: log new connections (port-scan detector)"
    assert v7[0].get("log-prefix") == "tzsp-ips" and v7[1].flags == "*" and v7[1].index == 1
    v6 = parse_terse("  0   name=full policy=local,telnet,ssh,!ftp skin=default \r\n")
    assert v6[0].get("policy") == "local,telnet,ssh,!ftp" and v6[0].get("skin") == "default"
    sniffer = parse_properties("  streaming-enabled: yes\r\n   streaming-server: 192.0.2.9:37008\r\n")
    assert sniffer.get("streaming-server") == "192.0.2.9:37008"


def test_values_compare_as_routeros_means_them():
    from responder.provision.drift import same

    assert same("tcp-flags", "!rst,!ack", "!ack,!rst")  # the router reorders flag lists
    assert same("policy", "ssh,read,write,!local,!telnet", "ssh,read,write")  # v6 lists what the group lacks
    assert not same("policy", "ssh,read,write,test", "ssh,read,write")
    assert same("address", "198.51.100.5/32", "198.51.100.5/32") and same("remote", "2001:db8::5", "2001:db8:0::5")
    assert not same("sniff-target", "198.51.100.9", "198.51.100.5") and not same("chain", None, "input")


def test_the_routers_version_decides_the_flavour():
    from responder.routeros.printed import router_flavour
    from responder.routeros.replies import ReplyParseError

    assert router_flavour("           uptime: 1d\r\n          version: 6.49.17 (long-term)\r\n") == "v6"
    assert router_flavour("  version: 7.16.2 (stable)\r\n") == "v7"
    with pytest.raises(ReplyParseError):
        router_flavour("bad command name resource (line 1 column 9)")
