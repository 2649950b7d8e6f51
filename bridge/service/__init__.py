"""``snort-bridge run``: the long-running service that ties the packages together.

``service`` (start, the loop and its passes, reload, stop), ``inputs`` (follower and listener
threads and their queue), ``outputs`` (the HTTP server and notifications), ``parts`` (building
each part from a configuration), ``reload`` (what a reload rebuilds), ``keeping`` (the state_dir's
lock, wall-clock steps, the ledger and positions file in trouble), ``stderr_log``.

May import every package below it: ``bridge.follow``, ``bridge.decide``, ``bridge.scan``,
``bridge.parsers``, ``bridge.notify``, ``bridge.watching``, ``bridge.config``, ``responder``,
``plumbing``. Only the CLI imports it.
"""
