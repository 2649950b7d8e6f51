"""Deciding: who the attacker of an alert is, and whether and for how long to block them.

``attribution`` (which end of an alert attacks), ``policy`` (the decision, the flood guard, the
never-block sets), ``durations`` (repeat offenders' escalation), ``hostaddrs`` (this host's and
the routers' own addresses, which are never blocked).

May import: ``bridge.events``, ``bridge.config`` (the policy's settings), ``responder.config`` and
``responder.events``. Never ``bridge.service``, ``bridge.watching`` or the CLI.
"""
