"""routeros-sim's router: its memory and tables, pure, with no I/O.

``items`` (item numbers, the state's errors), ``state`` (the router's memory and clock),
``addresses`` (address lists), ``users`` (users, groups, keys, scripts and their policies),
``tables`` (the table adapter and the core menus), ``firewall`` and ``firewall_tables`` (filter rules
with connection tracking), ``rules`` (raw and mangle), ``services`` and ``service_tables``
(``/ip service``, ``/certificate``), ``settings`` (``/tool sniffer``), ``remote_log`` and
``memory_log`` (``/system logging``, ``/log``), ``printing`` (how v6 and v7 lay out ``print``), and
``menus`` (which adapter serves a menu: the one module that knows them all).

May import ``responder.routeros``; never ``responder.sim.script`` or ``responder.sim.wire``.
"""
