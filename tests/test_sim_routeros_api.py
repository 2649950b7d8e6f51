"""routeros-api (PyPI ``RouterOS-api``, module ``routeros_api``), an API client we did not write,
driving routeros-sim's API port: login, add, print with a query, set, remove, a trap (v6, v7)."""

from __future__ import annotations

import pytest
import routeros_api
from routeros_api.exceptions import RouterOsApiCommunicationError


@pytest.mark.parametrize("flavour", ["v6", "v7"])
def test_routeros_api_adds_prints_sets_and_removes(host_key, flavour):
    from responder.sim import SimRouter

    with SimRouter(host_key=host_key, flavour=flavour) as router:
        router.add_user("api", password="pw", policies=("api", "read", "write"))
        port = router.start_api("127.0.0.1", 0)
        pool = routeros_api.RouterOsApiPool("127.0.0.1", username="api", password="pw", port=port, plaintext_login=True)
        try:
            api = pool.get_api()
            lists = api.get_resource("/ip/firewall/address-list")
            lists.add(list="blk", address="192.0.2.7", comment="from routeros-api")
            lists.add(list="blk", address="198.51.100.0/24", timeout="1d")
            rows = lists.get(list="blk")
            assert sorted(row["address"] for row in rows) == ["192.0.2.7", "198.51.100.0/24"]
            first = next(row for row in rows if row["address"] == "192.0.2.7")
            assert first["comment"] == "from routeros-api" and first["id"].startswith("*")
            lists.set(id=first["id"], comment="changed")
            assert router.address_list("blk")[0].comment == "changed"
            with pytest.raises(RouterOsApiCommunicationError) as trapped:
                lists.add(list="blk", address="192.0.2.7")
            assert b"already have such entry" in trapped.value.original_message
            lists.remove(id=first["id"])
            assert [row["address"] for row in lists.get(list="blk")] == ["198.51.100.0/24"]
        finally:
            pool.disconnect()
        assert [e.address for e in router.address_list("blk")] == ["198.51.100.0/24"]
