"""Bringing each router's address list to what the ledger wants: one worker thread per router.

``plan`` (what one pass must do, pure), ``step_runner`` (carrying the steps out over a session),
``worker`` (the thread, its session and its passes), ``backoff`` (capped exponential backoff).

May import ``responder.ledger``, ``responder.transport``, ``responder.routeros``, ``responder.feed``
and the responder's small modules; never anything in ``bridge``.
"""
