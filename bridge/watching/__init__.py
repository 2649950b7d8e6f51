"""What a person or Prometheus sees of a running bridge: /metrics, /health and the status page.

``observe`` (a feed subscriber that keeps metrics and recent events), ``status`` (the page's
HTML, pure), ``web`` (the routes on ``plumbing.httpserver``).

Reads from the feed, never sits in the alert path. May import ``bridge.config``,
``bridge.events``, ``responder`` (the feed, the ledger's read side) and ``plumbing``; never
``bridge.service`` or the CLI.
"""
