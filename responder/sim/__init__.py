"""routeros-sim: a RouterOS stand-in (SSH CLI) for trying a setup before touching a production router.

Layers: ``state`` (router memory, injectable clock), ``cli_parser`` (one line -> statements),
``interpreter`` + ``tables`` + ``printing`` (statements -> state changes and RouterOS output),
``ssh_server`` (paramiko, looks like ROSSSH on the wire), ``server.SimRouter`` (ties them together),
``cli`` (the ``routeros-sim`` command).
"""

from responder.sim.server import SimRouter

__all__ = ["SimRouter"]
