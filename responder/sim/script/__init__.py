"""routeros-sim's language: parsing a RouterOS CLI line or script and running it against the router.

May import ``responder.sim.router`` and ``responder.routeros``; never ``responder.sim.wire``.
"""
