"""routeros-sim on the network: its SSH and API servers and the listener they share.

May import ``responder.sim.router`` and ``responder.sim.script``.
"""
