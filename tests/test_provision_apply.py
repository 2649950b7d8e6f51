"""snort-bridge provision --apply and --check against routeros-sim (v6 and v7) over real SSH.

Each router starts bare: an administrator ``admin`` and nothing of ours. ``--apply`` logs in as the
administrator, records the host key, runs the script; a second run changes nothing; ``--check``
(logging in as the responder's new user, with its key) names each kind of drift with its fix, and
``--apply`` puts every one of them right.
"""

from __future__ import annotations

import os
import re

import pytest
from responder_rig import client_key, shared_host_key, write_config

from bridge.cli import main as snort_bridge
from responder.sim import SimRouter
from responder.sim.router.users import ALL_POLICIES
from responder.transport import known_hosts

ADMIN_PASSWORD = "admin-pw"
MARK = "tzsp-ips"


class Router:
    """A bare routeros-sim over SSH and a configuration naming it."""

    def __init__(self, tmp_path, flavour, *, tzsp="mangle", **router_extra):
        self.tmp_path = tmp_path
        self.flavour = flavour
        self.sim = SimRouter(
            flavour=flavour,
            host_key=shared_host_key(),
            users=[{"name": "admin", "password": ADMIN_PASSWORD, "policies": ALL_POLICIES}],
        )
        self.port = self.sim.start("127.0.0.1", 0)
        self.key_path, self.key = client_key(tmp_path)
        if flavour == "v6":  # v6 imports user keys from a file the administrator uploaded
            self.sim.put_file("tzsp-ips.pub", f"{self.key.get_name()} {self.key.get_base64()} ips@test")
        self.known_hosts = str(tmp_path / "known_hosts")
        self.password_file = tmp_path / "admin.password"
        self.password_file.write_text(ADMIN_PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)
        table = dict(
            name="r1",
            host="127.0.0.1",
            port=self.port,
            user="ips",
            key_file=self.key_path,
            known_hosts=self.known_hosts,
            list="blacklist",
            connect_timeout="5s",
            command_timeout="10s",
            **router_extra,
        )
        self.config = write_config(tmp_path, [table], extra='[scan]\nsyslog = "127.0.0.1:5514"')
        # no --flavour: --apply and --check ask the router for its version
        self.common = ["--config", self.config, "--this-host", "127.0.0.1", "--tzsp", tzsp]

    def apply(self, *extra):
        return snort_bridge(
            ["provision", "r1", "--apply", "--admin", "admin", "--admin-password-file", str(self.password_file)]
            + ["--yes", *self.common, *extra]
        )

    def check(self):
        return snort_bridge(["provision", "r1", "--check", *self.common])

    def admin(self, line):
        output = self.sim.execute("admin", line).output.strip()
        assert not output or not re.match(r"(failure|bad command|syntax error|expected end|no such)", output), output
        return output

    def terse(self, menu):
        return [line for line in self.admin(f"{menu} print terse").splitlines() if "=" in line]

    def ours(self, menu):
        return [line for line in self.terse(menu) if f"comment={MARK}" in line]


@pytest.fixture(params=["v7", "v6"])
def router(request, tmp_path):
    router = Router(tmp_path, request.param)
    yield router
    router.sim.stop()


FIREWALL = ("/ip firewall filter", "/ipv6 firewall filter", "/ip firewall mangle", "/ip firewall raw")


def snapshot(router):
    menus = FIREWALL + ("/ipv6 firewall raw", "/user", "/user group", "/user ssh-keys", "/system logging action")
    return {menu: router.terse(menu) for menu in menus + ("/system logging",)}


def test_apply_twice_leaves_one_of_everything_and_the_second_run_changes_nothing(router, capsys):
    assert router.apply() == 0
    first = capsys.readouterr().out
    assert "offers a ssh-rsa host key" in first and "recorded in" in first  # the admin confirmed (--yes)
    name = known_hosts.host_name("127.0.0.1", router.port)
    assert known_hosts.check(known_hosts.load(router.known_hosts), name, router.sim.host_key.asbytes()) == "ok"
    assert "added IPv4 filter input: drop sources in address list blacklist" in first
    assert "added TZSP streaming by mangle sniff-tzsp" in first
    assert "added remote log action tzspips" in first
    assert "router r1: as provisioned" in first
    after_first = snapshot(router)

    assert router.apply() == 0
    second = capsys.readouterr().out
    assert "router r1: no change, it already was as provisioned" in second, second
    assert "added" not in second and "changed" not in second and "removed" not in second
    assert snapshot(router) == after_first  # not one rule more, not one moved

    for menu in ("/ip firewall filter", "/ipv6 firewall filter"):
        assert len(router.ours(menu)) == 5  # two log rules and three drops, once each
    assert len(router.ours("/ip firewall mangle")) == 1
    assert router.ours("/ip firewall raw") == []
    assert len([line for line in router.terse("/user") if "name=ips " in line]) == 1
    assert len([line for line in router.terse("/user group") if "name=tzsp-ips " in line]) == 1
    assert len(router.terse("/user ssh-keys")) == 1
    assert len([line for line in router.terse("/system logging") if "action=tzspips" in line]) == 1
    [stealth] = [line for line in router.ours("/ip firewall filter") if "tzsp-ips-stealth" in line]
    assert ("limit=10,30:packet" in stealth) == (router.flavour == "v7")  # v6 has no limit mode
    drops = [line for line in router.ours("/ip firewall filter") if "action=drop" in line]
    assert [re.match(r"\s*(\d+)", line).group(1) for line in drops] == ["0", "1", "2"]  # the top of the table

    # the responder's user logs in with its key and finds the router as provisioned
    assert router.check() == 0
    assert "router r1: as provisioned" in capsys.readouterr().out

    # a key somebody else gave the user is not ours to remove
    _, other = client_key(router.tmp_path, "other_key")
    line = f"{other.get_name()} {other.get_base64()} colleague@laptop"
    if router.flavour == "v6":
        router.sim.put_file("other.pub", line)
        router.admin("/user ssh-keys import user=ips public-key-file=other.pub")
    else:
        router.admin(f'/user ssh-keys add user=ips key="{line}"')
    assert router.apply() == 0
    assert len(router.terse("/user ssh-keys")) == 2


def test_check_names_each_kind_of_drift_with_its_fix_and_apply_puts_it_right(router, capsys):
    assert router.apply() == 0
    capsys.readouterr()
    # someone puts an accept above everything, points the mirror elsewhere, drops the log action,
    # renames the list in one drop rule
    router.admin(
        "/ip firewall filter add chain=input action=accept connection-state=established,related "
        "place-before=[:pick [/ip firewall filter find] 0]"
    )
    router.admin('/ip firewall mangle set [find where comment="tzsp-ips: to tzspd"] sniff-target=192.0.2.77')
    router.admin("/system logging action remove [find where name=tzspips]")
    router.admin(
        '/ipv6 firewall filter set [find where comment="tzsp-ips: drop forward sources in the address list"] '
        "src-address-list=renamed"
    )
    assert router.check() == 1
    out = capsys.readouterr().out
    lines = {line.split(": ", 1)[1].split(" (")[0]: line for line in out.splitlines() if ": " in line}
    assert lines["IPv4 filter input: drop sources in address list blacklist"].startswith("misplaced: ")
    assert "below the accept rule #0 of chain input" in out
    assert "forward" not in " ".join(line for line in out.splitlines() if line.startswith("misplaced"))
    mangle = lines["TZSP streaming by mangle sniff-tzsp"]
    assert mangle.startswith("different: ") and "sniff-target is 192.0.2.77, expected 127.0.0.1" in mangle
    assert mangle.endswith(
        '; fix: /ip firewall mangle set [/ip firewall mangle find where comment="tzsp-ips: to tzspd"] '
        "sniff-target=127.0.0.1"
    )
    action = lines["remote log action tzspips"]
    assert action.startswith("missing: ") and "fix: /system logging action add name=tzspips target=remote" in action
    renamed = lines["IPv6 filter forward: drop sources in address list blacklist"]
    assert "src-address-list is renamed, expected blacklist" in renamed
    assert "router r1: 4 of " in out

    assert router.apply() == 0
    fixed = capsys.readouterr().out
    assert "moved IPv4 filter input: drop sources in address list blacklist above the accept rules" in fixed
    assert "changed TZSP streaming by mangle sniff-tzsp: sniff-target 192.0.2.77 -> 127.0.0.1" in fixed
    assert "added remote log action tzspips" in fixed
    assert "src-address-list renamed -> blacklist" in fixed
    assert router.check() == 0
    first_input = [line for line in router.terse("/ip firewall filter") if "chain=input" in line][0]
    assert "action=drop" in first_input  # above the administrator's accept again


def test_each_fix_line_of_check_repairs_what_it_names(router, capsys):
    assert router.apply() == 0
    router.admin(
        "/ip firewall filter add chain=forward action=accept place-before=[:pick [/ip firewall filter find] 0]"
    )
    router.admin(
        '/ip firewall mangle add chain=prerouting action=sniff-tzsp sniff-target=127.0.0.1 comment="tzsp-ips: to tzspd"'
    )
    capsys.readouterr()
    assert router.check() == 1
    fixes = [line.split("; fix: ", 1)[1] for line in capsys.readouterr().out.splitlines() if "; fix: " in line]
    assert len(fixes) == 3  # two forward drops below the accept, the duplicate mirror rule
    for fix in fixes:
        router.admin(fix)
    assert router.check() == 0


def test_apply_with_the_sniffer_and_raw_blocking(tmp_path, capsys):
    router = Router(tmp_path, "v7", tzsp="sniffer", block_in="raw")
    try:
        assert router.apply() == 0
        capsys.readouterr()
        assert len([line for line in router.ours("/ip firewall raw") if "chain=prerouting action=drop" in line]) == 2
        assert not [line for line in router.ours("/ip firewall filter") if "action=drop" in line]
        assert router.ours("/ip firewall mangle") == []
        sniffer = router.admin("/tool sniffer print")
        assert re.search(r"streaming-server: 127\.0\.0\.1:37008", sniffer), sniffer
        assert router.apply() == 0
        assert "no change" in capsys.readouterr().out
        router.admin("/tool sniffer set streaming-server=192.0.2.5:37008")
        assert router.check() == 1
        assert "streaming-server is 192.0.2.5:37008, expected 127.0.0.1:37008" in capsys.readouterr().out
    finally:
        router.sim.stop()


def test_the_admin_password_never_comes_from_a_file_others_can_read(tmp_path, capsys):
    router = Router(tmp_path, "v7")
    try:
        os.chmod(router.password_file, 0o644)
        assert router.apply() != 0
        out = capsys.readouterr()
        assert "readable by group or others" in out.out + out.err
        assert router.ours("/ip firewall filter") == []
    finally:
        router.sim.stop()


def test_the_admin_password_is_asked_for_when_no_file_is_given(tmp_path, capsys, monkeypatch):
    router = Router(tmp_path, "v7")
    asked = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or ADMIN_PASSWORD)
    try:
        assert snort_bridge(["provision", "r1", "--apply", "--admin", "admin", "--yes", *router.common]) == 0
        assert asked == ["password of admin on r1 (127.0.0.1): "]
        assert "router r1: as provisioned" in capsys.readouterr().out
    finally:
        router.sim.stop()


def test_an_unconfirmed_host_key_applies_nothing(tmp_path, capsys, monkeypatch):
    router = Router(tmp_path, "v7")
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    try:
        args = ["provision", "r1", "--apply", "--admin", "admin", "--admin-password-file", str(router.password_file)]
        assert snort_bridge(args + router.common) == 1
        out = capsys.readouterr().out
        assert "not recorded" in out and "not applied" in out
        assert router.ours("/ip firewall filter") == []
    finally:
        router.sim.stop()


def test_usage_mistakes_are_refused_before_anything_is_sent(tmp_path, capsys):
    router = Router(tmp_path, "v7")
    try:
        assert snort_bridge(["provision", "r1", "--apply", *router.common]) == 2
        assert "--apply needs --admin USER" in capsys.readouterr().err
        assert snort_bridge(["provision", "r1", "--admin", "admin", *router.common]) == 2
        assert "go with --apply" in capsys.readouterr().err
        with pytest.raises(SystemExit) as refused:  # argparse: one or the other
            snort_bridge(["provision", "r1", "--apply", "--check", *router.common])
        assert refused.value.code == 2 and "not allowed with argument --apply" in capsys.readouterr().err
        api = write_config(
            tmp_path, [dict(name="r1", host="127.0.0.1", transport="api", password_file=str(router.password_file))]
        )
        assert snort_bridge(["provision", "r1", "--check", "--config", api, "--this-host", "127.0.0.1"]) == 2
        assert "work over SSH" in capsys.readouterr().err
        assert router.sim.commands_log == []
    finally:
        router.sim.stop()


@pytest.mark.parametrize("flavour", ["v6", "v7"])
def test_the_printed_script_pasted_twice_into_the_terminal_leaves_one_of_everything(flavour):
    """What an administrator does with `snort-bridge provision r1` without --apply (the issue:
    pasted twice, the old script doubled every rule and stopped at `/user group add`)."""
    import ipaddress

    from responder.provision import ProvisionPlan, render_provision
    from responder.sim.script.interpreter import Console

    sim = SimRouter(flavour=flavour, users=[{"name": "admin", "password": "pw", "policies": ALL_POLICIES}])
    plan = ProvisionPlan(
        router="r1",
        router_host="192.0.2.1",
        this_host=ipaddress.ip_address("192.0.2.5"),
        throwaway_password="pw2",
        flavour=flavour,
        syslog_port=5514,
        memory_logging=True,
    )
    script = render_provision(plan)
    seen = []
    for _ in range(2):
        shown = sim.interpreter.run_line("admin", script, console=Console()).lines
        assert list(shown) == []  # nothing refused
        seen.append(
            {m: sim.execute("admin", f"{m} print terse").output for m in FIREWALL + ("/user", "/system logging")}
        )
    assert seen[0] == seen[1]
    ours = [line for line in seen[1]["/ip firewall filter"].splitlines() if "comment=tzsp-ips" in line]
    assert len(ours) == 5
    logging = seen[1]["/system logging"]
    assert len([line for line in logging.splitlines() if "action=memory" in line and "topics=firewall" in line]) == 1
