"""routeros-sim's router: its memory and tables, pure, with no I/O.

``state`` (address lists, users, scripts, the clock), ``tables`` (one adapter per menu),
``firewall`` and ``firewall_tables`` (filter rules with connection tracking), ``remote_log``
(``/system logging``), ``printing`` (how v6 and v7 lay out ``print``).

May import ``responder.routeros``; never ``responder.sim.script`` or ``responder.sim.wire``.
"""
