"""routeros-sim's language: parsing a RouterOS CLI line or script and running it against the router.

Parsing, pure: ``tokens``, ``syntax`` (the statements), ``expressions``, ``menus`` (the command
tree), ``parser``. Running: ``interpreter`` (one line or script against a RouterState), with
``scope`` (what a running line carries, and the interpreter as its helpers see it), ``reading``
(``find``, ``print``, ``get``), ``builtins`` (``:do``, ``:if``, ``:foreach``, …), ``singletons``
(``/system resource``, …), ``export``, ``values``, ``errors``.

May import ``responder.sim.router`` and ``responder.routeros``; never ``responder.sim.wire``.
"""
