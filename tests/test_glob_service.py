"""`[[alerts]] path` as a glob in `snort-bridge run`: one source per matched file, files that appear
later followed from their start without a restart, each alert keeping its own file."""

from __future__ import annotations

from responder_rig import wait_until
from test_e2e_service import DEADLINE, Service, append, fast_line, write_service_config


def test_a_glob_path_follows_files_that_appear_later(lab, services, tmp_path):  # noqa: F811
    lab.add("r1")
    (tmp_path / "sensor1").mkdir()
    first = tmp_path / "sensor1" / "alert_fast.txt"
    append(first, fast_line("203.0.113.61"))
    config = write_service_config(lab, alerts=tmp_path / "*" / "alert_fast.txt")
    service = Service(config, tmp_path / "run.log").start()
    services.append(service)
    assert wait_until(lambda: "203.0.113.61" in lab.entries("r1"), DEADLINE), service.text()
    (tmp_path / "sensor2").mkdir()
    second = tmp_path / "sensor2" / "alert_fast.txt"
    append(second, fast_line("203.0.113.62"))  # a sensor added while running
    assert wait_until(lambda: "203.0.113.62" in lab.entries("r1"), DEADLINE), service.text()
    assert f"[{second}:1]" in service.text()  # the alert names its own file
    assert service.stop() == 0
