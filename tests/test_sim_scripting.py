"""routeros-sim scripting (manual "Scripting"): blocks, :do/on-error, :if, :foreach, :for,
:local/:global, expressions, where with and/or/!, the menus a router's setup script uses
(raw, mangle, IPv6 firewall, logging, sniffer, users), print terse/count-only and export.
Pure tests of the interpreter, plus a few lines through SSH exec."""

from __future__ import annotations

import ipaddress

import paramiko
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sim_interpreter import Router

from responder.provision import ProvisionPlan, render_provision
from responder.sim import SimRouter
from responder.sim.script.interpreter import Console
from responder.sim.script.parser import CliSyntaxError, parse_line

FILTER = "/ip firewall filter"


@pytest.fixture(params=["v6", "v7"])
def router(request) -> Router:
    return Router(request.param)


def enter(router: Router, text: str, console: Console | None = None, user: str = "admin") -> list[str]:
    """What the terminal shows for one entry (script mode: ``#`` comments, several lines)."""
    console = console if console is not None else Console()
    return list(router.interpreter.run_line(user, text, console=console).lines)


def lines(router: Router, line: str, user: str = "admin") -> list[str]:
    return list(router.run(line, user).lines)


def comments(router: Router, menu: str = FILTER) -> list[str]:
    ids = lines(router, f":foreach i in=[{menu} find] do={{ :put [{menu} get $i comment] }}")
    return ids


def test_do_on_error_runs_the_handler_when_the_body_fails(router):
    top = f":do {{ {FILTER} add chain=input action=drop comment=%s place-before=[:pick [{FILTER} find] 0] }} "
    top += f"on-error={{ {FILTER} add chain=input action=drop comment=%s }}"
    assert lines(router, top % ("first", "first-appended")) == []  # empty table: no rule 0, the handler appends
    assert lines(router, top % ("second", "never")) == []
    assert comments(router) == ["second", "first-appended"]
    assert lines(router, ':do { :error "boom"; :put never } on-error={ :put caught }') == ["caught"]
    assert lines(router, ':do { :error "boom" }; :put never') == ["boom"]  # without a handler the error stops the line


def test_onerror_is_v7_only_and_names_the_error(router):
    out = lines(router, ':onerror e in={ :error "boom" } do={ :put "got $e" }')
    if router.state.profile.flavour == "v7":
        assert out == ["got boom"]
        assert lines(router, ":put [:onerror e in={ :put fine } do={ :put never }]") == ["fine", "false"]
    else:
        assert out == ["bad command name onerror (line 1 column 2)"]


def test_if_else_and_expressions(router):
    assert lines(router, ":if (3 > 2) do={ :put big } else={ :put small }") == ["big"]
    assert lines(router, ":local n 10; :if ($n < 9 || $n = 10) do={ :put yes }") == ["yes"]
    assert lines(router, ':local s "a"; :if (!($s = "b") && [:len $s] = 1) do={ :put ok } else={ :put no }') == ["ok"]
    assert lines(router, ':put ("tzsp" . "-ips")') == ["tzsp-ips"]
    assert lines(router, ":put (2 + 3)") == ["5"]
    assert lines(router, ':if ("x") do={ :put y }') == ["conditional not boolean"]


def test_local_ends_with_its_block_and_loops_bind_their_variable(router):
    assert lines(router, ':local a 1; { :local b 2; :put ($a + $b) }; :put "[$b]"') == ["3", "[]"]
    assert lines(router, ":for i from=1 to=3 do={ :put $i }") == ["1", "2", "3"]
    assert lines(router, ":local n 0; :while ($n < 3) do={ :set n ($n + 1); :put $n }") == ["1", "2", "3"]
    assert lines(router, ":while (true) do={ :nothing }") == ["too many loop turns (routeros-sim stops at 100000)"]
    assert lines(router, ":foreach x in=[:toarray 1] do={ :put $x }")[0].startswith("bad command name toarray")
    lines(router, "/ip firewall address-list add list=a address=192.0.2.1")
    lines(router, "/ip firewall address-list add list=a address=192.0.2.2")
    out = lines(
        router,
        ":foreach i in=[/ip firewall address-list find list=a] do={ :put [/ip firewall address-list get $i address] }",
    )
    assert out == ["192.0.2.1", "192.0.2.2"]


def test_len_pick_typeof(router):
    assert lines(router, ':put [:len "abcd"]; :put [:pick "abcd" 1 3]; :put [:pick "abcd" 2]') == ["4", "bc", "c"]
    assert lines(router, ':put [:typeof 5]; :put [:typeof "5"]; :put [:typeof $nothing]; :put [:typeof true]') == [
        "num",
        "str",
        "nothing",
        "bool",
    ]
    lines(router, f"{FILTER} add chain=input action=accept")
    assert lines(router, f":put [:typeof [:pick [{FILTER} find] 0]]; :put [:len [{FILTER} find]]") == ["id", "1"]


def test_where_with_or_not_and_parentheses(router):
    for chain, comment in (("input", "tzsp-ips: a"), ("forward", "tzsp-ips: b"), ("forward", "other")):
        lines(router, f'{FILTER} add chain={chain} action=drop comment="{comment}"')
    count = f"{FILTER} print count-only where "
    assert lines(router, count + 'comment~"^tzsp-ips" and chain=forward') == ["1"]
    assert lines(router, count + "chain=input or comment=other") == ["2"]
    assert lines(router, count + '!(comment~"tzsp")') == ["1"]
    assert lines(router, count + '(chain=input or chain=forward) and !(comment="other")') == ["2"]
    assert lines(router, f':put [:len [{FILTER} find where comment~"tzsp-ips" or chain=input]]') == ["2"]


def test_place_before_and_move_keep_drop_rules_above_accept(router):
    lines(router, f"{FILTER} add chain=input action=accept connection-state=established,related comment=accept")
    lines(router, f"{FILTER} add chain=input action=drop comment=drop place-before=[find where action=accept]")
    assert comments(router) == ["drop", "accept"]
    lines(router, f"{FILTER} add chain=input action=drop comment=late")
    lines(router, f'{FILTER} move [find where comment=late] destination=[find where comment="accept"]')
    assert comments(router) == ["drop", "late", "accept"]
    assert lines(router, f"{FILTER} move [find where comment=late] destination=*FFF") == ["no such item"]


def test_mangle_sniff_tzsp_raw_and_the_ipv6_tables(router):
    add = "/ip firewall mangle add chain=prerouting action=sniff-tzsp sniff-target=192.0.2.5 sniff-target-port=37008"
    assert lines(router, add + ' comment="tzsp-ips: to tzspd"') == []
    terse = lines(router, "/ip firewall mangle print terse")
    assert len(terse) == 1 and "action=sniff-tzsp sniff-target=192.0.2.5 sniff-target-port=37008" in terse[0]
    assert lines(router, "/ip firewall mangle add chain=prerouting action=sniff-tzsp") == [
        "failure: sniff-target must be set for action sniff-tzsp"
    ]
    assert lines(router, "/ip firewall mangle add chain=prerouting action=sniff-tzsp sniff-target=tzspd.lan") == [
        "invalid value for argument sniff-target"
    ]
    assert lines(router, "/ip firewall raw add chain=prerouting action=drop src-address-list=blacklist") == []
    assert lines(router, "/ip firewall raw add chain=input action=drop") == ["invalid value for argument chain"]
    assert lines(router, "/ip firewall mangle add chain=prerouting action=drop") == [
        "invalid value for argument action"
    ]
    for menu, chain, action in (
        ("filter", "input", "drop"),
        ("raw", "prerouting", "drop"),
        ("mangle", "prerouting", "accept"),
    ):
        assert (
            lines(router, f"/ipv6 firewall {menu} add chain={chain} action={action} src-address-list=blacklist") == []
        )
        assert lines(router, f"/ipv6 firewall {menu} print count-only") == ["1"]
    assert lines(router, "/ip firewall raw print count-only where src-address-list=blacklist") == ["1"]


def test_logging_actions_and_rules(router):
    assert (
        lines(router, "/system logging action add name=tzspips target=remote remote=192.0.2.5 remote-port=5514") == []
    )
    assert lines(router, "/system logging action add name=mem target=memory memory-lines=500") == []
    assert lines(router, "/system logging add topics=firewall action=tzspips") == []
    assert lines(router, "/system logging add topics=firewall action=nowhere") == [
        "input does not match any value of action"
    ]
    assert lines(router, ':put [/system logging print count-only where action=tzspips and topics~"firewall"]') == ["1"]
    assert lines(router, "/system logging action add name=tzspips target=memory") == [
        "failure: action with such name already exists"
    ]


def test_sniffer_settings(router):
    flavour = router.state.profile.flavour
    assert (
        lines(router, "/tool sniffer set streaming-enabled=yes streaming-server=192.0.2.5:37008 filter-stream=yes")
        == []
    )
    assert lines(router, "/tool sniffer start") == []
    expected = "192.0.2.5:37008" if flavour == "v7" else "192.0.2.5"
    assert lines(router, ":put [/tool sniffer get streaming-server]; :put [/tool sniffer get running]") == [
        expected,
        "yes",
    ]
    shown = lines(router, "/tool sniffer print")
    assert any(line.strip() == "streaming-enabled: yes" for line in shown)
    assert lines(router, "/tool sniffer set streaming-server=not-an-address") == [
        "invalid value for argument streaming-server"
    ]
    refused = lines(router, "/tool sniffer start", user="ips")[0]
    assert refused.startswith("not enough permissions (9)")


def test_users_groups_and_keys_found_by_their_comment(router):
    assert lines(router, '/user group add name=tzsp-ips policy=ssh,read,write comment="tzsp-ips: group"') == []
    assert lines(router, '/user add name=ips2 group=tzsp-ips address=192.0.2.5/32 comment="tzsp-ips: responder"') == []
    guarded = (
        ':if ([:len [/user group find where name="tzsp-ips"]] = 0) do={ /user group add name=tzsp-ips policy=ssh }'
    )
    assert lines(router, guarded) == []  # present: nothing added, no "already exists"
    assert lines(router, '/user group print count-only where comment~"^tzsp-ips"') == ["1"]
    assert lines(router, "/user group add name=tzsp-ips policy=ssh") == [
        "failure: group with the same name already exists"
    ]
    assert lines(router, ':put [/user get [find where comment="tzsp-ips: responder"] group]') == ["tzsp-ips"]


def test_ip_service_and_a_certificate_for_api_ssl(router):
    make = (
        ":if ([:len [/certificate find where name=api]] = 0) do={ /certificate add name=api "
        'common-name="192.0.2.1" days-valid=3650 key-usage=tls-server; /certificate sign api }'
    )
    assert lines(router, make) == [] and lines(router, make) == []  # the second run finds it
    assert lines(router, "/certificate print count-only") == ["1"]
    assert lines(router, "/ip service set api-ssl certificate=api address=192.0.2.5/32 disabled=no") == []
    assert lines(router, ":put [/ip service get api-ssl certificate]; :put [/ip service get api-ssl port]") == [
        "api",
        "8729",
    ]
    assert lines(router, "/ip service set api-ssl certificate=missing") == [
        "input does not match any value of certificate"
    ]
    assert lines(router, "/certificate remove api") == ["failure: certificate is in use"]
    assert lines(router, "/ip service add name=x")[0].startswith("bad command name add")
    assert "set api-ssl address=192.0.2.5/32 certificate=api" in lines(router, "/ip service export")


def test_unknown_commands_fail_as_on_a_router(router):
    with pytest.raises(CliSyntaxError) as caught:
        parse_line("/ip firewall nat add chain=srcnat")
    assert caught.value.text == "bad command name nat (line 1 column 14)"
    assert lines(router, ":foo 1") == ["bad command name foo (line 1 column 2)"]
    assert lines(router, "/tool sniffer set bogus=1") == ["expected end of command (line 1 column 24)"]
    assert lines(router, ":if (1 = 1) do={ /ip firewall filter frobnicate }") == [
        "bad command name frobnicate (line 1 column 38)"
    ]
    assert lines(router, ':do { :put "a" } on-error={') == ["syntax error (line 1 column 28)"]


def test_export_is_a_script_that_rebuilds_the_same_configuration(router):
    setup = [
        '/ip firewall address-list add list=blacklist address=203.0.113.9 comment="seen \\"twice\\""',
        "/ip firewall address-list add list=blacklist address=203.0.113.10 timeout=1h",  # dynamic: not exported
        f'{FILTER} add chain=input action=drop src-address-list=blacklist comment="tzsp-ips: drop src in blacklist" in-interface=ether1',
        "/ip firewall mangle add chain=prerouting action=sniff-tzsp sniff-target=192.0.2.5 sniff-target-port=37008",
        "/ip firewall raw add chain=prerouting action=drop src-address-list=blacklist",
        "/system logging action add name=tzspips target=remote remote=192.0.2.5 remote-port=5514",
        "/system logging add topics=firewall action=tzspips",
        "/tool sniffer set streaming-enabled=yes filter-stream=yes",
        "/user group add name=tzsp-ips policy=ssh,read,write comment=tzsp-ips",
    ]
    for line in setup:
        assert lines(router, line) == [], line
    everything = lines(router, "/export")
    assert everything[0].startswith("# ") and "by RouterOS" in everything[0]
    assert "/ip firewall mangle" in everything and "timeout" not in "\n".join(everything)
    assert any(line.endswith(" \\") for line in everything)  # long lines wrap as RouterOS's do
    assert "add comment=tzsp-ips name=tzsp-ips" in "\n".join(everything)
    fresh = Router(router.state.profile.flavour)  # it has the fixture's users and groups already: not those
    for prefix in ("/ip", "/system", "/tool"):
        exported = lines(router, f"{prefix} export")
        assert enter(fresh, "\n".join(exported)) == [], prefix
        assert lines(fresh, f"{prefix} export")[1:] == exported[1:]
    terse = lines(router, "/ip firewall export terse")
    assert "/ip firewall raw add action=drop chain=prerouting src-address-list=blacklist" in terse
    assert not any(line.startswith("/system") for line in terse)


def test_log_messages_and_script_errors_reach_log_print(router):
    assert lines(router, ':log info "tzsp-ips: provisioned"; :log warning "look"') == []
    shown = lines(router, "/log print")
    assert [line.split(" ", 1)[1] for line in shown] == ["script,info tzsp-ips: provisioned", "script,warning look"]
    assert lines(router, '/log print where message~"provisioned"')[0].endswith("tzsp-ips: provisioned")
    assert lines(router, '/log print count-only where topics~"warning"') == ["1"]
    assert lines(router, ":log loud x")[0].startswith("bad command name loud")
    router.state.add_script("broken", "/ip firewall address-list add list=a address=not/valid/x", "admin")
    lines(router, "/system script run broken")
    assert lines(router, '/log print count-only where topics~"script,error"') == ["1"]
    assert lines(router, "/log print follow") == ["expected end of command (line 1 column 12)"]


def test_nested_loops_are_bounded(router):
    out = lines(router, ":for i from=1 to=1000000 do={ :for j from=1 to=1000000 do={ :nothing } }")
    assert out == ["too many loop turns (routeros-sim stops at 100000)"]
    doubling = ':local s "ab"; :for i from=1 to=64 do={ :set s ($s . $s) }'
    assert lines(router, doubling) == ["string too long (routeros-sim stops at 1000000 characters)"]
    assert lines(router, ':local s "ab"; :for i from=1 to=64 do={ :set s "$s$s" }') == lines(router, doubling)


def test_deep_nesting_is_a_syntax_error_not_a_crash(router):
    deep = "{ " * 500 + ":put x " + "} " * 500
    assert lines(router, deep) == ["syntax error (line 1 column 129)"]
    assert lines(router, ":put " + "(" * 300 + "1" + ")" * 300) == ["syntax error (line 1 column 70)"]
    assert lines(router, "{ " * 10 + ":put x " + "} " * 10) == ["x"]


def test_console_keeps_menu_globals_and_print_numbers_between_entries(router):
    console = Console()
    assert enter(router, "/ip firewall address-list", console) == [] and console.cwd == (
        "ip",
        "firewall",
        "address-list",
    )
    enter(router, "add list=a address=192.0.2.1", console)
    enter(router, ":global seen 7", console)
    assert enter(router, ":put $seen", console) == ["7"]
    enter(router, "print", console)
    assert enter(router, "remove 0", console) == []
    assert enter(router, "print count-only", console) == ["0"]
    enter(router, "..", console)
    assert console.cwd == ("ip", "firewall")
    multi = "# a comment line\n:if (true) do={\n  :put one\n  :put two\n}"
    assert enter(router, multi, console) == ["one", "two"]


@pytest.mark.parametrize("flavour", ["v6", "v7"])
@pytest.mark.parametrize("transport", ["ssh", "api"])
def test_the_provision_script_runs_in_the_console(flavour, transport):
    plan = ProvisionPlan(
        router="core1",
        router_host="192.0.2.1",
        this_host=ipaddress.ip_address("192.0.2.5"),
        user="responder",
        list_name="blacklist",
        public_key=None,
        throwaway_password=None,
        password_source=None,
        flavour=flavour,
        tzsp="mangle",
        syslog_port=5514,
        transport=transport,
    )
    router = Router(flavour)
    assert enter(router, render_provision(plan)) == []
    assert lines(router, "/ip firewall mangle print count-only where action=sniff-tzsp") == ["1"]
    assert lines(router, '/ip firewall filter print count-only where comment~"tzsp-ips" and action=drop') == ["3"]


def test_scripting_through_ssh_exec():
    with SimRouter(flavour="v7") as sim:
        sim.add_user("admin", password="pw", policies=("ssh", "read", "write", "policy"))
        port = sim.start()
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect("127.0.0.1", port=port, username="admin", password="pw", look_for_keys=False, allow_agent=False)
        with client:
            line = (
                f":do {{ {FILTER} add chain=input action=drop place-before=[:pick [{FILTER} find] 0] }} "
                f"on-error={{ {FILTER} add chain=input action=drop comment=appended }}; "
                f':put [:len [{FILTER} find where comment="appended"]]'
            )
            _, stdout, _ = client.exec_command(line, timeout=10)
            assert stdout.read() == b"1\r\n"
            _, stdout, _ = client.exec_command(
                ":if (1 > 2) do={ :put a } else={ :put b }; :put [:pick abc 1]", timeout=10
            )
            assert stdout.read() == b"b\r\nb\r\n"


_SCRIPT_PIECES = st.sampled_from(
    [
        ":do ",
        ":if ",
        ":foreach i in=",
        ":for i from=1 to=3 ",
        ":onerror e in=",
        ":local x ",
        ":set x ",
        ":put ",
        ":pick ",
        ":len ",
        ":find ",
        ":typeof ",
        ":error ",
        ":log info ",
        "{ ",
        "} ",
        "(",
        ")",
        "[",
        "]",
        "do=",
        "else=",
        "on-error=",
        "$x ",
        "$i",
        '"a" ',
        "1 ",
        "true ",
        "< ",
        "> ",
        "&& ",
        "|| ",
        "! ",
        ". ",
        "+ ",
        "= ",
        "!= ",
        "~ ",
        "and ",
        "or ",
        "/ip firewall filter ",
        "/ip firewall raw ",
        "/ip firewall mangle ",
        "/tool sniffer ",
        "add chain=input action=drop ",
        'find where comment~"a" ',
        "move 0 ",
        "place-before=",
        "export ",
        "print terse ",
        "..",
        ";",
        "\n",
        "# c\n",
        "\\\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_SCRIPT_PIECES, max_size=16).map("".join), st.sampled_from(["v6", "v7"]))
def test_any_entry_gives_routeros_output_never_an_exception(entry, flavour):
    """Whatever a person types or pastes, the console answers as RouterOS text (the terminal's
    thread must never die on an exception)."""
    router = Router(flavour)
    console = Console()
    result = router.interpreter.run_line("admin", entry, console=console)
    assert all(isinstance(line, str) and "\n" not in line for line in result.lines if ":put" not in entry)
    router.interpreter.run_line("admin", entry.replace("\n", " "))  # the same as one exec line
