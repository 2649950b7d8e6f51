"""Notifications through apprise: blocks, routers down and up, the flood guard, silent sensors.

``digest`` is the pure part: feed events in, messages out, with the clock passed in (first event
at once, later ones within ``min_interval`` gathered into one digest). ``delivery`` is the thin
shell: a feed subscriber with a bounded queue, one thread that digests, and one sender thread per
URL that calls apprise with retries. Blocking never waits for any of it.
"""
