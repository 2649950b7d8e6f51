"""[http] in the configuration file, and the token file: checked at start, errors name the key."""

from __future__ import annotations

import os

import pytest

from bridge.config import ConfigError, example_config, parse_config
from bridge.watching.web import TokenError, read_token

TOKEN = "0123456789abcdef0123"


def problems(text: str) -> list:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.problems


def token_file(tmp_path, mode=0o600, text=TOKEN + "\n"):
    path = tmp_path / "http.token"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_loopback_needs_no_token():
    for listen in ("127.0.0.1:9470", "[::1]:9470", "localhost:9470"):
        http = parse_config(f'[http]\nlisten = "{listen}"\n').http
        assert http.listen == listen and http.token_file is None


def test_beyond_loopback_without_a_token_is_refused():
    for listen in ("0.0.0.0:9470", "[::]:9470", "192.0.2.10:9470", "ids.example.net:9470"):
        assert problems(f'[http]\nlisten = "{listen}"\n') == [
            f"http.token_file: missing; http.listen = '{listen}' is reachable from other hosts, so every request "
            "must carry a token: expected a file holding it (mode 0600)"
        ]


def test_token_file_must_be_private(tmp_path):
    path = token_file(tmp_path, mode=0o644)
    (problem,) = problems(f'[http]\nlisten = "0.0.0.0:9470"\ntoken_file = "{path}"\n')
    assert problem.startswith("http.token_file: ") and "mode 0644" in problem
    os.chmod(path, 0o600)
    http = parse_config(f'[http]\nlisten = "0.0.0.0:9470"\ntoken_file = "{path}"\n').http
    assert http.token_file == str(path)
    (problem,) = problems(f'[http]\ntoken_file = "{tmp_path / "absent"}"\n')
    assert "expected a file holding the token (mode 0600)" in problem


def test_other_keys_are_checked():
    assert problems('[http]\nlisten = "nowhere"\nsilent_after = "soon"\ntzspd = 9471\nport = 1\n') == [
        "http.port: unknown key; expected one of listen, provision_check, silent_after, token_file, tzspd",
        'http.listen: expected "ADDRESS:PORT" such as "0.0.0.0:5514" or "[::]:5514", got \'nowhere\'',
        'http.silent_after: expected a duration such as "30s", "5m", "1d2h" or "00:05:00", got \'soon\'',
        'http.tzspd: expected "ADDRESS:PORT" such as "0.0.0.0:5514" or "[::]:5514", got a number (9471)',
    ]
    http = parse_config('[http]\nsilent_after = "10m"\ntzspd = "127.0.0.1:9471"\n').http
    assert (http.silent_after, http.tzspd) == (600.0, "127.0.0.1:9471")
    assert parse_config("[http]\n").http.provision_check == 600.0  # on by default, every 10 minutes
    assert parse_config('[http]\nprovision_check = "1h"\n').http.provision_check == 3600.0
    assert parse_config("[http]\nprovision_check = false\n").http.provision_check == 0.0
    assert problems('[http]\nprovision_check = "0s"\n') == [
        "http.provision_check: expected a duration longer than 0s, got '0s'"
    ]


def test_example_has_http():
    assert parse_config(example_config()).http.listen == "127.0.0.1:9470"


def test_read_token(tmp_path):
    assert read_token(str(token_file(tmp_path))) == TOKEN
    with pytest.raises(TokenError, match="mode 0640"):
        read_token(str(token_file(tmp_path, mode=0o640)))
    with pytest.raises(TokenError, match="at least 16 characters"):
        read_token(str(token_file(tmp_path, text="short\n")))
    with pytest.raises(TokenError, match="cannot read"):
        read_token(str(tmp_path / "absent"))
