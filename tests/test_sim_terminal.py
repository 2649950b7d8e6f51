"""routeros-sim's interactive terminal (manual "Command Line Interface"): the pure line editor
and session, then real clients on a pty: paramiko, OpenSSH ``ssh -tt`` driven by a person's
keys through pexpect, and netmiko's ``mikrotik_routeros`` driver (v6 and v7)."""

from __future__ import annotations

import subprocess

import paramiko
import pexpect
import pytest
from conftest import require_tool
from netmiko import ConnectHandler

from responder.sim import SimRouter
from responder.sim.wire.terminal import LoginOptions, Terminal, parse_login_options, prompt

AL = "/ip firewall address-list"
WAIT = 15  # seconds a client waits for the router's next words before the test fails


def make_terminal(flavour: str = "v7", entries: list | None = None) -> Terminal:
    ran = entries if entries is not None else []

    def run(entry: str) -> list[str]:
        ran.append(entry)
        return [f"ran {entry}"]

    version = "7.16.2 (stable)" if flavour == "v7" else "6.49.17 (long-term)"
    return Terminal(run, lambda: prompt("admin", "MikroTik", (), flavour), version=version)


# -- pure ----------------------------------------------------------------------------------------


def test_login_options_after_the_plus():
    assert parse_login_options("admin+ct511w4098h") == LoginOptions(False, False, False, 511, 4098)
    assert parse_login_options("admin") == LoginOptions()
    assert parse_login_options("admin+c80w") == LoginOptions(colours=False, width=80)
    assert parse_login_options("admin+cet1024w").dumb is True


def test_prompt_forms():
    assert prompt("admin", "MikroTik", (), "v7") == "[admin@MikroTik] > "
    assert prompt("ips", "core1", ("ip", "firewall", "filter"), "v7") == "[ips@core1] /ip/firewall/filter> "
    assert prompt("ips", "core1", ("ip", "firewall", "filter"), "v6") == "[ips@core1] /ip firewall filter> "


@pytest.mark.parametrize("flavour,marker", [("v7", "Press F1 for help"), ("v6", "Move up to base level")])
def test_banner_then_prompt(flavour, marker):
    shown = make_terminal(flavour).start()
    assert marker in shown and "MikroTik RouterOS " + ("7.16.2" if flavour == "v7" else "6.49.17") in shown
    assert shown.endswith("\r\n[admin@MikroTik] > ") and "\n" not in shown.replace("\r\n", "")


def test_echo_backspace_and_enter_run_one_entry():
    entries: list[str] = []
    terminal = make_terminal(entries=entries)
    assert terminal.feed("/quix") == "/quix"
    assert terminal.feed("\x7f") == "\b \b"
    assert terminal.feed("t2") == "t2"
    assert terminal.feed("\r\n") == "\r\nran /quit2\r\n[admin@MikroTik] > "  # CR LF is one Enter
    assert entries == ["/quit2"]


def test_ctrl_c_drops_the_line_and_history_recalls():
    entries: list[str] = []
    terminal = make_terminal(entries=entries)
    terminal.feed(":put one\r")
    terminal.feed(":put two\r")
    assert terminal.feed("half typed\x03") == "half typed\r\n[admin@MikroTik] > "
    assert entries == [":put one", ":put two"]
    shown = terminal.feed("\x1b[A\x1b")  # up arrow, then half of the next escape sequence
    assert shown.endswith("[admin@MikroTik] > :put two\x1b[K")
    terminal.feed("[A")  # its rest: up again
    terminal.feed("\r")
    assert entries[-1] == ":put one"


def test_a_lone_escape_does_not_eat_the_next_key():
    entries: list[str] = []
    terminal = make_terminal(entries=entries)
    terminal.feed("ab\x1b")
    terminal.feed("c\r")
    assert entries == ["abc"]


def test_cursor_moves_and_inserts_in_the_middle():
    entries: list[str] = []
    terminal = make_terminal(entries=entries)
    terminal.feed(":put ac\x1b[Db\x1b[3~\x01X\x05Y\r")
    assert entries == ["X:put abY"]


def test_an_open_brace_continues_the_entry_with_routeros_prompt():
    entries: list[str] = []
    terminal = make_terminal(entries=entries)
    assert terminal.feed(":if (true) do={\r") == ":if (true) do={\r\n{... "
    assert terminal.feed(":put (1 +\r") == ":put (1 +\r\n{(... "
    terminal.feed("2)\r")
    terminal.feed("}\r")
    assert entries == [":if (true) do={\n:put (1 +\n2)\n}"]
    terminal.feed("\x1b[A\r")  # the history holds it as one line that runs the same
    assert entries[-1] == ":if (true) do={; :put (1 +; 2); }"


def test_quit_and_ctrl_d_leave():
    terminal = make_terminal()
    terminal.feed("/quit\r")
    assert terminal.closed
    terminal = make_terminal()
    terminal.feed("x\x04")
    assert not terminal.closed  # Ctrl-D on a line with text is no exit
    terminal.feed("\x03\x04")
    assert terminal.closed


# -- over SSH ------------------------------------------------------------------------------------


@pytest.fixture
def sim(host_key):
    router = SimRouter(host_key=host_key, terminal_detect_wait=60)  # an unanswered ESC Z would hang the test
    router.add_user("admin", password="pw", policies=("ssh", "read", "write", "policy", "test"))
    router.start()
    yield router
    router.stop()


def read_until(channel: paramiko.Channel, marker: bytes) -> bytes:
    channel.settimeout(WAIT)
    data = b""
    while marker not in data:
        chunk = channel.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def open_shell(router: SimRouter, login: str) -> tuple[paramiko.SSHClient, paramiko.Channel]:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=router.port,
        username=login,
        password="pw",
        look_for_keys=False,
        allow_agent=False,
        timeout=WAIT,
    )
    return client, client.invoke_shell(term="xterm", width=120, height=40)


def test_shell_detects_the_terminal_unless_t_is_given(sim):
    client, channel = open_shell(sim, "admin")
    with client:
        assert read_until(channel, b"\x1bZ").startswith(b"\x1bZ")
        channel.sendall(b"\x1b[?1;2c")  # what xterm answers
        assert read_until(channel, b"] > ").endswith(b"[admin@MikroTik] > ")
        channel.sendall(f"{AL} add list=blk address=192.0.2.9\r".encode())
        read_until(channel, b"] > ")
        channel.sendall(b"/quit\r")
        assert channel.status_event.wait(WAIT) and channel.recv_exit_status() == 0
    assert sim.holds("blk", "192.0.2.9")
    client, channel = open_shell(sim, "admin+ct80w")
    with client:
        shown = read_until(channel, b"] > ")
        assert b"\x1bZ" not in shown and b"MikroTik RouterOS" in shown


def test_a_person_with_ssh_tt(tmp_path, host_key):
    ssh = require_tool("ssh")
    keygen = require_tool("ssh-keygen")
    key = tmp_path / "id_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    with SimRouter(host_key=host_key, flavour="v6", identity="core1", terminal_detect_wait=60) as router:
        router.add_user(
            "admin",
            authorized_keys=[(tmp_path / "id_ed25519.pub").read_text().strip()],
            policies=("ssh", "read", "write", "policy"),
        )
        port = router.start()
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} ssh-rsa {host_key.get_base64()}\n")
        args = ["-tt", "-F", "/dev/null", "-i", str(key), "-o", f"UserKnownHostsFile={known}"]
        args += ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(port), "admin@127.0.0.1"]
        person = pexpect.spawn(ssh, args, timeout=WAIT, encoding="utf-8")
        try:
            person.expect_exact("\x1bZ")
            person.send("\x1b/Z")  # a VT52-style answer, as terminal emulators give
            person.expect_exact("MikroTik RouterOS 6.49.17")
            person.expect_exact("[admin@core1] > ")
            person.send("/system identity prinx\x7ft\r")  # a typo, fixed with backspace
            person.expect_exact("name: core1")
            person.expect_exact("[admin@core1] > ")
            person.send(f"{AL} add list=blk address=192.0.2.66\x03")  # thought better of it
            person.expect_exact("[admin@core1] > ")
            person.send(f"{AL}\r")
            person.expect_exact("[admin@core1] /ip firewall address-list> ")
            person.send("add list=blk address=192.0.2.77\r")
            person.expect_exact("address-list> ")
            person.send("print count-only\r")
            person.expect_exact("1\r\n")
            person.send("add list=blk address=192.0.2.78\r")
            person.expect_exact("address-list> ")
            person.send("\x1b[A\x1b[A\r")  # up twice: print count-only again
            person.expect_exact("2\r\n")
            person.send("/quit\r")
            person.expect(pexpect.EOF)
        finally:
            person.close()
        assert person.exitstatus == 0
        assert [e.address for e in router.address_list("blk")] == ["192.0.2.77", "192.0.2.78"]


@pytest.mark.parametrize("flavour", ["v6", "v7"])
def test_netmiko_mikrotik_routeros(host_key, flavour):
    with SimRouter(host_key=host_key, flavour=flavour, identity="edge") as router:
        router.add_user("admin", password="pw", policies=("ssh", "read", "write", "policy"))
        port = router.start()
        connection = ConnectHandler(
            device_type="mikrotik_routeros",
            host="127.0.0.1",
            port=port,
            username="admin",
            password="pw",
            use_keys=False,
            allow_agent=False,
            timeout=WAIT,
            fast_cli=True,
        )
        try:
            assert connection.find_prompt() == "[admin@edge] >"
            sent = connection.send_config_set(
                [f"{AL} add list=blk address=192.0.2.7", f'{AL} add list=blk address=192.0.2.8 comment="two words"']
            )
            assert "failure" not in sent and "error" not in sent
            printed = connection.send_command(f"{AL} print")
            assert "192.0.2.7" in printed and ";;; two words" in printed and "[admin@edge]" not in printed
            terse = connection.send_command(f"{AL} print terse where address=192.0.2.8")
            assert "comment=two words" in terse and "192.0.2.7" not in terse
            assert connection.send_command(f"{AL} add list=blk address=192.0.2.7") == "failure: already have such entry"
        finally:
            connection.disconnect()
        assert [e.address for e in router.address_list("blk")] == ["192.0.2.7", "192.0.2.8"]
