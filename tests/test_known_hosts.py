"""known_hosts: OpenSSH format, [host]:port, hashed names, fingerprints as ssh-keygen prints them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import subprocess

import paramiko
import pytest

from responder.transport import known_hosts as kh


@pytest.fixture(scope="module")
def keys():
    return [paramiko.RSAKey.generate(2048), paramiko.RSAKey.generate(2048)]


def hashed(name: str, salt: bytes = b"0123456789abcdefghij") -> str:
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def line(pattern: str, key: paramiko.PKey, marker: str = "") -> str:
    return f"{marker + ' ' if marker else ''}{pattern} {key.get_name()} {key.get_base64()} comment here"


def test_host_name_brackets_non_default_ports():
    assert kh.host_name("192.0.2.1") == "192.0.2.1"
    assert kh.host_name("192.0.2.1", 2222) == "[192.0.2.1]:2222"
    assert kh.host_name("2001:db8::1", 2222) == "[2001:db8::1]:2222"


def test_check_ok_unknown_changed(keys):
    good, other = keys
    entries = kh.parse_known_hosts(line("[127.0.0.1]:2222", good) + "\n")
    assert kh.check(entries, "[127.0.0.1]:2222", good.asbytes()) == kh.OK
    assert kh.check(entries, "[127.0.0.1]:2222", other.asbytes()) == kh.CHANGED
    assert kh.check(entries, "127.0.0.1", good.asbytes()) == kh.UNKNOWN  # port 22 is a different entry
    assert kh.check(entries, "[127.0.0.1]:2223", good.asbytes()) == kh.UNKNOWN


def test_patterns_hashes_negation_and_revoked(keys):
    good, other = keys
    text = "\n".join(
        [
            "# a comment",
            "",
            "garbage",
            "host ssh-rsa !!!notbase64",
            "@weird host ssh-rsa AAAA",
            line("core1,192.0.2.1", good),
            line("*.example.net,!bad.example.net", good),
            line(hashed("[10.0.0.1]:2222"), good),
            line("revoked.example.net", other, "@revoked"),
            line("revoked.example.net", good),
        ]
    )
    entries = kh.parse_known_hosts(text)
    assert len(entries) == 5
    assert kh.check(entries, "192.0.2.1", good.asbytes()) == kh.OK
    assert kh.check(entries, "r1.example.net", good.asbytes()) == kh.OK
    assert kh.check(entries, "bad.example.net", good.asbytes()) == kh.UNKNOWN
    assert kh.check(entries, "[10.0.0.1]:2222", good.asbytes()) == kh.OK
    assert kh.check(entries, "[10.0.0.1]:2222", other.asbytes()) == kh.CHANGED
    assert kh.check(entries, "revoked.example.net", other.asbytes()) == kh.REVOKED
    assert kh.recorded_key_types(entries, "192.0.2.1") == ["ssh-rsa"]


def test_fingerprint_matches_ssh_keygen(tmp_path, keys):
    key = keys[0]
    expected = "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    assert kh.fingerprint(key.asbytes()) == expected
    keygen = shutil.which("ssh-keygen")
    if keygen:  # cross-check with OpenSSH itself when it is installed
        pub = tmp_path / "k.pub"
        pub.write_text(f"{key.get_name()} {key.get_base64()}\n")
        out = subprocess.run([keygen, "-l", "-E", "sha256", "-f", str(pub)], capture_output=True, text=True, check=True)
        assert out.stdout.split()[1] == kh.fingerprint(key.asbytes())


def test_record_replaces_only_that_host_and_load_reads_back(tmp_path, keys):
    good, other = keys
    path = tmp_path / "etc" / "known_hosts"
    assert kh.load(str(path)) == []
    kh.record(str(path), "[127.0.0.1]:2222", good.get_name(), good.asbytes())
    kh.record(str(path), "other-router", good.get_name(), good.asbytes())
    kh.record(str(path), "[127.0.0.1]:2222", other.get_name(), other.asbytes())  # re-trust after a change
    entries = kh.load(str(path))
    assert kh.check(entries, "[127.0.0.1]:2222", other.asbytes()) == kh.OK
    assert kh.check(entries, "[127.0.0.1]:2222", good.asbytes()) == kh.CHANGED
    assert kh.check(entries, "other-router", good.asbytes()) == kh.OK
    assert len(path.read_text().splitlines()) == 2
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["known_hosts"]  # no temporary file left behind


def test_recorded_file_is_read_by_paramiko_too(tmp_path, keys):
    path = tmp_path / "known_hosts"
    kh.record(str(path), "[127.0.0.1]:2222", keys[0].get_name(), keys[0].asbytes())
    host_keys = paramiko.HostKeys(str(path))
    assert host_keys.lookup("[127.0.0.1]:2222")["ssh-rsa"] == keys[0]
