"""The configuration file: every problem named by its key, secrets kept out, the example accepted."""

from __future__ import annotations

import ipaddress
import os

import pytest

from bridge.config import CONFIG_ENV, Config, ConfigError, example_config
from bridge.config.load import load_config, parse_config

ROUTER = '[[routers]]\nname = "core1"\nhost = "192.0.2.1"\nkey_file = "/etc/tzsp-ips/id"\n'


def problems(text: str) -> list:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.problems


def test_example_config_parses_with_every_section():
    config = parse_config(example_config())
    assert isinstance(config, Config)
    assert config.policy.block_for == 300.0 and config.policy.window == 60.0
    assert config.policy.protected == (ipaddress.ip_network("192.168.0.0/16"),)
    assert [a.format for a in config.alerts] == ["json", "auto"]
    assert config.scan is not None and config.scan.ports == 15 and config.scan.window == 10.0
    assert [r.name for r in config.routers] == ["core1", "edge2"]
    assert config.routers[1].port == 2222 and config.routers[1].password_env == "EDGE2_PASSWORD"


def test_example_names_every_key_of_the_dataclasses():
    text = example_config()
    from bridge.config import PolicyConfig, ScanConfig
    from responder.config import RouterConfig

    for cls in (PolicyConfig, ScanConfig, RouterConfig):
        for name in cls.__dataclass_fields__:
            assert f"{name} =" in text, f"{cls.__name__}.{name} is missing from the example"


def test_empty_file_gives_defaults():
    config = parse_config("")
    assert config.routers == () and config.policy.min_priority == 1 and config.scan is None


def test_missing_router_keys_are_named():
    text = ROUTER + "[[routers]]\nport = 22\n"
    found = problems(text)
    assert "routers[1].name: missing; every [[routers]] table needs name and host" in found
    assert any(p.startswith("routers[1].host: missing") for p in found)


def test_bad_values_name_key_and_expectation():
    text = (
        """
state_dir = "/tmp/x"
[policy]
block_for = "5 minutes"
window = -3
min_priority = "1"
portscan = "yes"
threshold = 0
protected = ["10.0.0.1/8", "nonsense"]
include_sids = ["1000101"]
attacker = { "1:2" = "both", "2" = "src" }
portscan_attribution = "guess"
[[alerts]]
format = "xml"
[scan]
syslog = "0.0.0.0"
ports = 1
"""
        + ROUTER.replace('"192.0.2.1"', '"bad host!"')
        + 'port = 70000\ntransport = "telnet"\nmode = "firewall"\nlist = "x; /system reset"\nblock_in = "nat"\n'
    )
    found = problems(text)
    expected_prefixes = [
        'policy.block_for: expected a duration such as "30s", "5m"',
        "policy.window: ",
        "policy.min_priority: expected a whole number",
        "policy.portscan: expected true or false",
        "policy.threshold: 0 is out of range",
        "policy.protected[0]: '10.0.0.1/8' has host bits set; did you mean \"10.0.0.0/8\"?",
        "policy.protected[1]: expected a network",
        'policy.include_sids[0]: expected a "gid:sid" string',
        'policy.attacker."1:2": expected "src" or "dst"',
        'policy.attacker."2": expected a "gid:sid" key such as "1:1000101"',
        "policy.portscan_attribution: expected one of evidence | src",
        "alerts[0].path: missing",
        "alerts[0].format: expected one of auto | fast | syslog | json | csv | eve",
        'scan.syslog: expected "ADDRESS:PORT"',
        "scan.ports: 1 is out of range",
        "routers[0].host: expected an IP address or a host name",
        "routers[0].port: 70000 is out of range, expected 1..65535",
        "routers[0].transport: expected one of ssh | api",
        "routers[0].mode: expected one of address-list | script",
        "routers[0].block_in: expected one of filter | raw",
        "routers[0].list: expected an address-list name",
    ]
    for prefix in expected_prefixes:
        assert any(p.startswith(prefix) for p in found), (prefix, found)
    assert len(found) == len(expected_prefixes)


def test_unknown_keys_get_a_did_you_mean():
    found = problems(
        'stat_dir = "/x"\n[policy]\nblockfor = "5m"\n[[routers]]\nname = "a"\nhost = "::1"\nknownhosts = "/k"\n'
    )
    assert "stat_dir: unknown key; did you mean 'state_dir'?" in found
    assert "policy.blockfor: unknown key; did you mean 'block_for'?" in found
    assert "routers[0].knownhosts: unknown key; did you mean 'known_hosts'?" in found


def test_router_names_unique_and_secrets_exclusive():
    text = ROUTER + ROUTER.replace("key_file", 'password_env = "X"\nkey_file')
    found = problems(text)
    assert any(p.startswith("routers[1].name: 'core1' is used twice (also routers[0])") for p in found)
    assert any(p.startswith("routers[1].password_env: cannot be combined with key_file") for p in found)


def test_bad_toml_is_one_clear_problem():
    found = problems("[policy\nmin_priority = 1")
    assert len(found) == 1 and found[0].startswith("not valid TOML")


def only_problem(path) -> str:
    """The single problem load_config reports for the file at ``path``."""
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    (problem,) = caught.value.problems
    return problem


def test_password_in_file_is_refused_and_world_readable_file_says_so(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(ROUTER.replace("key_file", 'password = "hunter2"\n#'))
    path.chmod(0o644)
    problem = only_problem(path)
    assert problem.startswith("routers[0].password: a password is not allowed")
    assert "password_file" in problem and "password_env" in problem
    assert "readable by others (mode 0644)" in problem
    assert "hunter2" not in problem  # never echo the secret
    path.chmod(0o600)
    assert "readable by others" not in only_problem(path)


def test_password_file_readable_by_others_is_refused(tmp_path):
    secret = tmp_path / "core1.password"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    path = tmp_path / "config.toml"
    path.write_text(ROUTER.replace('key_file = "/etc/tzsp-ips/id"', 'password_file = "core1.password"'))
    path.chmod(0o644)
    problem = only_problem(path)
    assert problem.startswith("routers[0].password_file: ")
    assert "readable by group/others (mode 0644)" in problem and "0600" in problem
    secret.chmod(0o600)
    config = load_config(str(path))  # relative to the configuration file's folder
    assert config.routers[0].password_file == str(secret)
    assert config.path == str(path)


def test_missing_password_file_is_refused(tmp_path):
    text = ROUTER.replace('key_file = "/etc/tzsp-ips/id"', f'password_file = "{tmp_path}/absent"')
    found = problems(text)
    assert found[0].startswith("routers[0].password_file: cannot read")


def test_load_config_path_env_and_missing_file(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[policy]\nblock_for = "1h"\n')
    monkeypatch.setenv(CONFIG_ENV, str(path))
    assert load_config().policy.block_for == 3600.0
    assert load_config(str(path)).path == str(path)
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "nope.toml"))
    assert "cannot read the configuration file" in str(caught.value) and "nope.toml" in str(caught.value)


def test_durations_in_clock_form_and_bounds():
    config = parse_config('[policy]\nblock_for = "00:05:00"\nwindow = "1d2h"\n')
    assert config.policy.block_for == 300.0 and config.policy.window == 26 * 3600.0
    found = problems('[policy]\nblock_for = "40w"\n')
    assert found[0].startswith("policy.block_for: expected at most")


def test_parse_accepts_a_table_too():
    config = parse_config({"policy": {"threshold": 3, "protected": ["2001:db8::/32", "10.0.0.1"]}})
    assert config.policy.threshold == 3
    assert config.policy.protected == (ipaddress.ip_network("2001:db8::/32"), ipaddress.ip_network("10.0.0.1/32"))


def test_wrong_shapes_do_not_crash():
    found = problems('policy = 3\nrouters = "x"\nalerts = [1]\n')
    assert "policy: expected a table ([policy]), got a number (3)" in found
    assert any(p.startswith("routers: expected an array of tables") for p in found)
    assert any(p.startswith("alerts[0]: expected a table") for p in found)


def test_error_message_carries_the_path(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[policy]\nthreshold = 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value).startswith(f"{path}: policy.threshold")
    assert os.fspath(path) == caught.value.path
