"""routeros-sim interpreter: what the router prints for a line, checked without SSH."""

from __future__ import annotations

import calendar
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from responder_rig import FakeClock

from responder.sim.router.state import RouterProfile, RouterState
from responder.sim.script.interpreter import Interpreter

START = float(calendar.timegm((2026, 10, 1, 8, 50, 30, 0, 0, 0)))  # 2026-10-01 08:50:30 UTC
AL = "/ip firewall address-list"


class Router:
    """A state + interpreter with an admin, a minimal `ips` user and a read-only `viewer`."""

    def __init__(self, flavour: str = "v7", parse_error_exit: int = 0):
        self.clock = FakeClock(START)
        self.state = RouterState(profile=RouterProfile(flavour=flavour), clock=self.clock)
        self.state.add_group("ips", "ssh,read,write")
        self.state.add_user("admin", group="full")
        self.state.add_user("ips", group="ips")
        self.state.add_user("viewer", group="read")
        self.interpreter = Interpreter(self.state, parse_error_exit=parse_error_exit)

    def run(self, line: str, user: str = "ips"):
        return self.interpreter.run_line(user, line)

    def out(self, line: str, user: str = "ips") -> str:
        return self.run(line, user).output


@pytest.fixture(params=["v6", "v7"])
def router(request) -> Router:
    return Router(request.param)


def test_successful_add_prints_nothing_and_put_add_prints_the_id(router):
    result = router.run(f"{AL} add list=blk address=198.51.100.23 timeout=1d")
    assert result.output == "" and result.exit_status == 0 and result.error_kind is None
    assert router.out(f":put [{AL} add list=blk address=198.51.100.24]") == "*2\r\n"


def test_v7_plain_print_matches_the_manual():
    router = Router("v7")
    router.run(f"{AL} add list=port-scanners address=198.51.100.23 timeout=1d")
    router.clock.advance(5)
    assert router.out(f"{AL} print") == (
        "Flags: D - DYNAMIC\r\n"
        "Columns: LIST, ADDRESS, CREATION-TIME, TIMEOUT\r\n"
        "#   LIST           ADDRESS        CREATION-TIME        TIMEOUT\r\n"
        "0 D port-scanners  198.51.100.23  2026-10-01 08:50:30  23h59m55s\r\n"
    )


def test_v6_plain_print_has_the_v6_header_and_dates():
    router = Router("v6")
    router.run(f"{AL} add list=blk address=192.168.3.0/24 timeout=5m")
    router.run(f'{AL} add list=blk address=192.0.2.1 comment="static one"')
    router.clock.advance(8)
    lines = router.out(f"{AL} print").split("\r\n")
    assert lines[0] == "Flags: X - disabled, D - dynamic "
    assert re.match(r"^ #   LIST +ADDRESS +CREATION-TIME +TIMEOUT$", lines[1])
    assert re.match(r"^ 0 D blk +192\.168\.3\.0/24 +oct/01/2026 08:50:30 +4m52s$", lines[2])
    assert lines[3] == " 1   ;;; static one" and re.match(r"^ {5}blk +192\.0\.2\.1 +oct/01/2026", lines[4])


def test_terse_v6_and_v7():
    v6, v7 = Router("v6"), Router("v7")
    for r in (v6, v7):
        r.run(f"{AL} add list=azeazeaze address=192.168.3.77/24 timeout=5m")
        r.run(f'{AL} add list=testing address=34.127.16.140 comment="two words"')
        r.clock.advance(8)
    assert v6.out(f"{AL} print terse").split("\r\n")[:2] == [
        " 0 D list=azeazeaze address=192.168.3.0/24 creation-time=oct/01/2026 08:50:30 timeout=4m52s ",
        " 1   comment=two words list=testing address=34.127.16.140 creation-time=oct/01/2026 08:50:30 ",
    ]
    assert v7.out(f"{AL} print terse").split("\r\n")[:2] == [
        " 0 D list=azeazeaze address=192.168.3.0/24 creation-time=2026-10-01 08:50:30 timeout=4m52s dynamic=yes",
        " 1   comment=two words list=testing address=34.127.16.140 creation-time=2026-10-01 08:50:30 dynamic=no",
    ]


def test_ipv6_terse_shows_prefix_128(router):
    router.run("/ipv6 firewall address-list add list=blk address=2001:db8::1 timeout=1h")
    assert "address=2001:db8::1/128 " in router.out("/ipv6 firewall address-list print terse")
    assert router.out(f"{AL} print count-only") == "0\r\n"  # IPv4 list untouched


def test_as_value_is_one_line_id_first_then_alphabetical():
    router = Router("v7")
    router.run(f'{AL} add list=blk address=192.0.2.1 comment="a b"')
    router.run(f"{AL} add list=blk address=192.0.2.2 timeout=1d")
    router.run(f"{AL} add list=other address=192.0.2.3")
    assert router.out(f"{AL} print as-value") == ""  # a value, not output, unless :put
    assert router.out(f":put [{AL} print as-value where list=blk]") == (
        ".id=*1;address=192.0.2.1;comment=a b;creation-time=2026-10-01 08:50:30;dynamic=false;list=blk;"
        ".id=*2;address=192.0.2.2;creation-time=2026-10-01 08:50:30;dynamic=true;list=blk;timeout=1d00:00:00\r\n"
    )


def test_detail_records_are_separated_by_blank_lines_and_wrap_with_a_space(router):
    router.run(f'{AL} add list="long list name" address=203.0.113.0/24 timeout=1w comment="why"')
    router.run(f"{AL} add list=blk address=192.0.2.1")
    text = router.out(f"{AL} print detail")
    records = text.split("\r\n\r\n")
    assert len(records) == 3 and records[2] == ""
    assert ";;; why" in records[0] and 'list="long list name"' in records[0]
    assert " \r\n " in records[0]  # wrapped: trailing space, CRLF, indent


def test_count_only_and_where(router):
    for n in range(3):
        router.run(f"{AL} add list=blk address=192.0.2.{n} timeout=1h")
    router.run(f"{AL} add list=blk address=192.0.2.9")
    assert router.out(f"{AL} print count-only where list=blk") == "4\r\n"
    assert router.out(f"{AL} print count-only where list=blk and !dynamic") == "1\r\n"
    assert router.out(f":put [{AL} print count-only where dynamic]") == "3\r\n"
    assert router.out(f":put [{AL} find address=192.0.2.1/32]") == "*2\r\n"


def test_duplicate_stops_the_rest_of_the_line(router):
    router.run(f"{AL} add list=blk address=203.0.113.77/24")
    result = router.run(f"{AL} add list=blk address=203.0.113.0/24; :put after")
    assert result.output == "failure: already have such entry\r\n"
    assert result.exit_status == 0 and result.error_kind == "duplicate"


def test_timeout_forms_and_out_of_range(router):
    router.run(f"{AL} add list=a address=192.0.2.1 timeout=1d2h")
    router.run(f"{AL} add list=a address=192.0.2.2 timeout=00:05:00")
    router.run(f"{AL} add list=a address=192.0.2.3 timeout=120")
    longest, shown = {"v7": ("35w3d13h13m56s", "35w3d13:13:56"), "v6": ("3w3d20h31m23s", "3w3d20:31:23")}[
        router.state.profile.flavour
    ]  # v6: the lower limit routeros-sim assumes (responder/routeros/duration.py)
    router.run(f"{AL} add list=a address=192.0.2.4 timeout={longest}")
    remaining = [e.deadline - router.clock() for e in router.state.entries(4)]
    assert remaining == [93600, 300, 120, router.state.profile.max_timeout]
    result = router.run(f"{AL} add list=a address=192.0.2.5 timeout={int(router.state.profile.max_timeout) + 1}")
    assert result.output == f"value of timeout is out of range (00:00:00 .. {shown})\r\n"
    assert router.run(f"{AL} add list=a address=192.0.2.6 timeout=soon").output.startswith("invalid value")


def test_set_find_rearms_a_dynamic_entry(router):
    router.run(f"{AL} add list=blk address=192.0.2.1 timeout=1m")
    router.clock.advance(50)
    assert router.out(f"{AL} set [find list=blk address=192.0.2.1] timeout=1m") == ""
    router.clock.advance(50)
    assert router.out(f"{AL} print count-only") == "1\r\n"
    router.clock.advance(10)
    assert router.out(f"{AL} print count-only") == "0\r\n"


def test_remove_find_empty_match_is_silent_and_stale_id_is_no_such_item(router):
    router.run(f"{AL} add list=blk address=192.0.2.1")
    assert router.out(f"{AL} remove [find list=blk address=192.0.2.99]; :put ok") == "ok\r\n"
    assert router.out(f"{AL} remove [find list=blk address=192.0.2.1]; :put [{AL} print count-only]") == "0\r\n"
    assert router.out(f"{AL} remove *1") == "no such item\r\n"


def test_item_numbers_come_from_the_last_print_on_the_line(router):
    router.run(f"{AL} add list=blk address=192.0.2.1")
    router.run(f"{AL} add list=blk address=192.0.2.2")
    assert router.out(f"{AL} remove 0") == "no such item\r\n"  # no print yet in this session
    out = router.out(f"{AL} print where address=192.0.2.2; {AL} remove 0; :put [{AL} find]")
    assert out.endswith("*1\r\n")


def test_comment_quoting_round_trip(router):
    comment = 'sid:2010935 "ET SCAN" $x; 100%\\'
    quoted = comment.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    router.run(f'{AL} add list=blk address=192.0.2.1 comment="{quoted}"')
    assert router.state.entries(4)[0].comment == comment


def test_dns_name_is_stored_silently(router):
    assert router.out(f"{AL} add list=blk address=bad.example.org") == ""
    assert router.state.entries(4)[0].address == "bad.example.org"


def test_errors_in_the_table_have_routeros_text(router):
    # the same line after ":put before; " (13 characters): columns move by 13, nothing runs
    cases = {
        "/ip firewall fakemenuxyz": "bad command name fakemenuxyz (line 1 column 27)",
        f"{AL} add list=blk adress=1.2.3.4": "expected end of command (line 1 column 59)",
        f'{AL} add list=blk comment="x': "syntax error (line 1 column 61)",
    }
    for line, text in cases.items():
        result = router.run(f":put before; {line}")
        assert result.output == text + "\r\n"
        assert router.state.entries(4) == []


def test_parse_error_exit_status_is_configurable():
    assert Router("v7", parse_error_exit=1).run("bogus").exit_status == 1
    assert Router("v7").run("bogus").exit_status == 0


def test_read_only_user_gets_not_enough_permissions():
    v7, v6 = Router("v7"), Router("v6")
    assert v7.out(f"{AL} add list=blk address=192.0.2.1", user="viewer") == (
        "not enough permissions (9) (/ip/firewall/address-list/add; line 1)\r\n"
    )
    assert v6.out(f"{AL} add list=blk address=192.0.2.1", user="viewer") == "not enough permissions (9)\r\n"
    assert v7.out(f"{AL} print count-only", user="viewer") == "0\r\n"
    assert v7.out("/user add name=eve group=full password=x", user="ips").startswith("not enough permissions (9)")
    assert v7.out("/user add name=eve group=full password=x", user="admin") == ""


def test_globals_are_per_user_and_scripts_run_as_the_caller(router):
    router.run(
        '/system script add name=block source=":global ip; '
        '/ip firewall address-list add list=blk address=\\$ip timeout=1d"',
        user="admin",
    )
    router.state.scripts["block"].policy = frozenset({"read", "write"})
    assert router.out(":global ip 192.0.2.7; /system script run block", user="ips") == ""
    assert [e.address for e in router.state.entries(4)] == ["192.0.2.7"]
    # a later exec by the same user sees the global; another user does not
    assert router.out(":global ip; :put $ip", user="ips") == "192.0.2.7\r\n"
    assert router.out(":global ip; :put $ip", user="admin") == "\r\n"
    # a global must be declared in scope before use
    assert router.out(":put $ip", user="ips") == "\r\n"
    # a script error is printed, logged, and stops the line
    result = router.run(":global ip 192.0.2.7; /system script run block; :put after", user="ips")
    assert result.output == "failure: already have such entry\r\n"
    assert router.state.log[-1] == "script error: failure: already have such entry"


def test_script_needs_all_its_policies():
    router = Router("v7")
    router.run('/system script add name=s source=":put hi"', user="admin")  # admin's policies
    assert router.out("/system script run s", user="ips").startswith("not enough permissions (9)")
    assert router.out("/system script run s", user="admin") == "hi\r\n"


def test_resource_and_identity():
    v7, v6 = Router("v7"), Router("v6")
    for r in (v7, v6):
        r.clock.advance(3 * 86400 + 4 * 3600 + 5 * 60 + 6)
    text7 = v7.out("/system resource print")
    assert re.search(r"^ +uptime: 3d4h5m6s\r$", text7, re.M)
    assert re.search(r"^ +version: 7\.\d+", text7, re.M) and re.search(r"^ +board-name: CHR\r$", text7, re.M)
    assert re.search(r"^ +version: 6\.\d+", v6.out("/system resource print"), re.M)
    assert v6.out(":put [/system resource get uptime]") == "3d04:05:06\r\n"
    assert v7.out("/system identity print") == "name: MikroTik\r\n"
    v7.run("/system identity set name=edge1", user="admin")
    assert v7.out(":put [/system identity get name]") == "edge1\r\n"


def test_user_ssh_keys_add_and_import():
    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    router = Router("v7")
    small = f"ssh-rsa {paramiko.RSAKey.generate(1024).get_base64()} tiny"
    assert router.out(f'/user ssh-keys add user=ips key="{small}"', user="admin") == (
        "keys smaller than 2048bit are not allowed\r\n"
    )
    router.state.files["k.pub"] = "ecdsa-sha2-nistp256 AAAAE2VjZHNh key"
    assert router.out("/user ssh-keys import user=ips public-key-file=k.pub", user="admin") == (
        "unable to load key file (wrong format or bad passphrase)\r\n"
    )
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    assert router.out(f'/user ssh-keys add user=ips key="{line} me@host"', user="admin") == ""
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    router.state.files["me.pem"] = pem
    assert router.out("/user ssh-keys import user=ips public-key-file=me.pem", user="admin") == ""
    assert "me.pem" not in router.state.files  # deleted once imported, as on RouterOS
    assert [k.key_type for k in router.state.keys_of("ips")] == ["ssh-ed25519", "ssh-ed25519"]
    assert router.out("/user ssh-keys print count-only", user="admin") == "2\r\n"


def test_multiple_statements_and_menu_directory(router):
    out = router.out(f"{AL}; add list=a address=192.0.2.1; add list=a address=192.0.2.2; print count-only")
    assert out == "2\r\n"


def test_user_and_script_set(router):
    assert router.out("/user set ips address=192.0.2.10/32 comment=responder disabled=no", user="admin") == ""
    user = router.state.users["ips"]
    assert user.comment == "responder" and user.allows_peer("192.0.2.10") and not user.allows_peer("127.0.0.1")
    assert router.out("/user set ips disabled=maybe", user="admin") == "invalid value for argument disabled\r\n"
    router.run('/system script add name=s source=":put one"', user="admin")  # carries admin's policies
    assert router.out("/system script run s", user="ips").startswith("not enough permissions (9)")
    assert router.out('/system script set s source=":put two" policy=read,test', user="admin") == ""
    assert router.out("/system script run s", user="ips").startswith("not enough permissions (9)")  # no test
    assert router.out("/system script set s policy=read; /system script run s", user="admin") == "two\r\n"
    assert router.out("/system script run s", user="ips") == "two\r\n"


_PIECES = st.sampled_from(
    [
        "/ip firewall address-list ",
        "/ipv6/firewall/address-list/",
        "add ",
        "set ",
        "remove ",
        "print ",
        "find ",
        "list=",
        "address=",
        "timeout=",
        "comment=",
        "where ",
        "[",
        "]",
        ";",
        '"',
        "\\",
        "$ip",
        ":global ",
        ":put ",
        "1.2.3.4",
        "2001:db8::1",
        "1d",
        "00:05:00",
        "*1",
        "0",
        "!",
        "=",
        "~",
        "terse ",
        "as-value ",
        "count-only ",
        "/system script run ",
        "/user ",
        "{",
        " ",
        "\n",
        "and ",
        "dynamic ",
        "x",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join), st.sampled_from(["v6", "v7"]))
def test_any_line_gives_routeros_output_never_an_exception(line, flavour):
    router = Router(flavour)
    result = router.run(line, user="admin")
    assert result.exit_status == 0
    assert all("\n" not in ln and "\r" not in ln for ln in result.lines if ln) or ":put" in line
