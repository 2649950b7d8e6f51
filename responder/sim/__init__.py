"""routeros-sim: a RouterOS stand-in (SSH CLI and API) for trying a setup before touching a production router.

Packages, lowest first: ``router`` (the router's memory, tables, firewall and printing; pure, with
an injectable clock), ``script`` (one CLI line or script -> statements -> state changes and RouterOS
output), ``wire`` (the SSH and API servers, paramiko and sockets); then ``server.SimRouter`` (ties
them together) and ``cli`` (the ``routeros-sim`` command).
"""

from responder.sim.server import SimRouter

__all__ = ["SimRouter"]
